// crash lab: module init waits forever in D state (hung task; with
// kernel.hung_task_panic=1 khungtaskd panics).
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/init.h>
#include <linux/completion.h>

static DECLARE_COMPLETION(never_completed);

static int __init hung_task_init(void)
{
	pr_info("hung_task: waiting uninterruptibly for a completion that never comes\n");
	wait_for_completion(&never_completed);
	return 0;
}

module_init(hung_task_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("crash lab: uninterruptible wait in module init");
