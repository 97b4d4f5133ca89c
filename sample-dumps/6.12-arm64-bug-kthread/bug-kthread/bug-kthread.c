// crash lab: a kthread that calls BUG() (invalid opcode oops in a kernel thread).
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/init.h>
#include <linux/kthread.h>
#include <linux/delay.h>
#include <linux/err.h>

static noinline int bug_kthread_fn(void *data)
{
	msleep(100);
	pr_info("bug_kthread: calling BUG()\n");
	BUG();
	return 0;
}

static int __init bug_kthread_init(void)
{
	struct task_struct *t = kthread_run(bug_kthread_fn, NULL, "bug_kthread");

	return PTR_ERR_OR_ZERO(t);
}

module_init(bug_kthread_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("crash lab: BUG() in a kthread");
