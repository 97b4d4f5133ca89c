// crash lab: a kthread spinning with preemption disabled (soft lockup; with
// kernel.softlockup_panic=1 the watchdog panics).
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/init.h>
#include <linux/kthread.h>
#include <linux/jiffies.h>
#include <linux/preempt.h>
#include <linux/err.h>

static noinline int softlockup_spin_fn(void *data)
{
	unsigned long end = jiffies + 180 * HZ;	/* give up after 3 minutes */

	pr_info("softlockup: spinning with preemption disabled\n");
	preempt_disable();
	while (time_before(jiffies, end))
		cpu_relax();
	preempt_enable();
	return 0;
}

static int __init softlockup_init(void)
{
	struct task_struct *t = kthread_run(softlockup_spin_fn, NULL, "softlockup_spin");

	return PTR_ERR_OR_ZERO(t);
}

module_init(softlockup_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("crash lab: spin with preemption off");
