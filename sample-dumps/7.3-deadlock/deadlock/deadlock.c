// crash lab: an ABBA deadlock. Two kthreads each take one mutex, wait until the other holds
// its own, then take the other's: both block forever in D state (with
// kernel.hung_task_panic=1 khungtaskd panics).
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/init.h>
#include <linux/kthread.h>
#include <linux/mutex.h>
#include <linux/delay.h>
#include <linux/atomic.h>
#include <linux/err.h>

static DEFINE_MUTEX(lock_a);
static DEFINE_MUTEX(lock_b);
static atomic_t holders = ATOMIC_INIT(0);

static noinline void take_both(struct mutex *first, struct mutex *second, const char *who)
{
	mutex_lock(first);
	atomic_inc(&holders);
	while (atomic_read(&holders) < 2)	/* both hold their first lock now */
		msleep(10);
	pr_info("%s: holds %s, taking %s\n", who, first == &lock_a ? "lock_a" : "lock_b",
		second == &lock_a ? "lock_a" : "lock_b");
	mutex_lock(second);			/* never returns */
	mutex_unlock(second);
	mutex_unlock(first);
}

static noinline int deadlock_ab_fn(void *data)
{
	take_both(&lock_a, &lock_b, "deadlock_ab");
	return 0;
}

static noinline int deadlock_ba_fn(void *data)
{
	take_both(&lock_b, &lock_a, "deadlock_ba");
	return 0;
}

static int __init deadlock_init(void)
{
	struct task_struct *t;

	pr_info("deadlock: lock_a=%px lock_b=%px\n", &lock_a, &lock_b);
	t = kthread_run(deadlock_ab_fn, NULL, "deadlock_ab");
	if (IS_ERR(t))
		return PTR_ERR(t);
	t = kthread_run(deadlock_ba_fn, NULL, "deadlock_ba");
	return PTR_ERR_OR_ZERO(t);
}

module_init(deadlock_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("crash lab: ABBA deadlock of two kthreads on two mutexes");
