// crash lab: a kthread that recurses with a large on-stack buffer until its stack overflows.
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/init.h>
#include <linux/kthread.h>
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/compiler.h>

/* far deeper than any kernel stack: the recursion ends in the guard page below the stack */
static unsigned long max_depth = 1000000;
module_param(max_depth, ulong, 0444);

static noinline unsigned long stack_overflow_recurse(unsigned long depth)
{
	char buf[256];
	unsigned long ret = 0;

	memset(buf, (int)depth, sizeof(buf));
	barrier_data(buf);
	if (depth < max_depth)
		ret = stack_overflow_recurse(depth + 1);
	/* the buffer is used after the call: no tail call, no loop */
	barrier_data(buf);
	return ret + buf[depth % sizeof(buf)];
}

static noinline int stack_overflow_fn(void *data)
{
	msleep(100);
	pr_info("stack_overflow: recursing with a %zu-byte buffer per frame\n", (size_t)256);
	return (int)stack_overflow_recurse(0);
}

static int __init stack_overflow_init(void)
{
	struct task_struct *t = kthread_run(stack_overflow_fn, NULL, "stack_overflow");

	return PTR_ERR_OR_ZERO(t);
}

module_init(stack_overflow_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("crash lab: kernel stack overflow by recursion in a kthread");
