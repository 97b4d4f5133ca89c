"""Which frames are machinery (panic, oops, exception, NMI, watchdog, allocator, scheduler waits)
and which are everyone's callers: the one list every view uses to skip to the culprit."""

from __future__ import annotations

# Frames that only carry the panic, oops, exception, NMI, IRQ-stack and watchdog machinery.
MACHINERY = frozenset("""
machine_kexec __crash_kexec crash_kexec panic vpanic nmi_panic oops_end die die_addr __die
__die_body do_trap do_error_trap do_int3 crash_nmi_callback nmi_handle default_do_nmi
end_repeat_nmi repeat_nmi nmi_restore nmi dump_stack dump_stack_lvl show_stack __warn
report_bug handle_bug handle_invalid_op page_fault_oops kernelmode_fixup_or_oops no_context
__bad_area_nosemaphore bad_area_nosemaphore bad_area bad_area_access_error do_user_addr_fault
do_kern_addr_fault handle_page_fault crash_setup_regs crash_save_cpu
native_machine_crash_shutdown kdump_nmi_callback nmi_shootdown_cpus crash_smp_send_stop
smp_send_stop check_panic_on_warn warn_slowpath_fmt __warn_printk _printk printk vprintk
vprintk_emit vprintk_default fixup_exception handle_stack_overflow show_regs __show_regs
nmi_cpu_backtrace nmi_trigger_cpumask_backtrace
watchdog_timer_fn __hrtimer_run_queues hrtimer_interrupt watchdog_overflow_callback
watchdog_hardlockup_check __perf_event_overflow perf_event_overflow handle_pmi_common
intel_pmu_handle_irq amd_pmu_handle_irq x86_pmu_handle_irq perf_event_nmi_handler
__irq_exit_rcu irq_exit_rcu __sysvec_apic_timer_interrupt
asm_call_sysvec_on_stack asm_call_on_stack asm_call_irq_on_stack run_sysvec_on_irqstack_cond
run_on_irqstack_cond call_on_stack
watchdog check_hung_uninterruptible_tasks check_hung_task
rcu_sched_clock_irq print_cpu_stall print_other_cpu_stall check_cpu_stall rcu_pending
rcu_dump_cpu_stacks update_process_times tick_sched_handle tick_sched_timer tick_nohz_handler
tick_periodic tick_handle_periodic
mce_panic do_machine_check mce_timed_out mce_reign
out_of_memory check_panic_on_oom dump_header oom_kill_process __alloc_pages_may_oom
__alloc_pages_slowpath __alloc_pages __alloc_pages_noprof alloc_pages_mpol
alloc_pages_mpol_noprof __folio_alloc __folio_alloc_noprof alloc_pages alloc_pages_noprof
folio_alloc vma_alloc_folio vma_alloc_folio_noprof __get_free_pages get_zeroed_page
___slab_alloc __slab_alloc allocate_slab new_slab kmalloc_large __kmalloc
__kmalloc_noprof kmalloc_trace __kmalloc_node __kmalloc_node_track_caller
kmem_cache_alloc kmem_cache_alloc_noprof kmem_cache_alloc_lru __kmem_cache_alloc_node
alloc_pages_bulk_noprof __alloc_pages_bulk __alloc_pages_bulk_noprof alloc_pages_vma
__delay __delay_cycles __const_udelay __udelay __ndelay
el1h_64_sync el1h_64_sync_handler el1_abort el1_dbg el1_undef el1_inv el1_pc el1_bti el1_fpac
el1_brk64 el1_softstp el1_watchpt el1_breakpt el1_mops el1_gcs el1_sp_pc
do_mem_abort do_translation_fault do_page_fault __do_kernel_fault die_kernel_fault do_bad_area
do_sea do_tag_check_fault arm64_notify_die do_el1_undef do_el1_bti do_el1_fpac bug_brk_handler
bug_handler call_el1_break_hook call_break_hook brk_handler do_debug_exception do_el1_brk64
el1h_64_irq el1h_64_irq_handler el1_interrupt __el1_irq el1h_64_fiq el1h_64_error
el0t_64_irq el0t_64_irq_handler __el0_irq_handler_common el0_interrupt call_on_irq_stack
do_interrupt_handler gic_handle_irq handle_domain_irq generic_handle_domain_irq
handle_percpu_devid_irq ipi_handler do_handle_IPI local_cpu_stop cpu_park_loop
__bad_stack handle_bad_stack panic_bad_stack
""".split())  # the second block: arm64 (entry-common.c, fault.c, traps.c, the panic=0 spin)
MACHINERY_PREFIXES = ("asm_exc_", "exc_", "asm_sysvec_", "sysvec_", "__sysvec_", "asm_common_",
                      "common_interrupt", "__pfx_")
# Frames that are everyone's caller: not part of a signature.
GENERIC = frozenset("""
do_syscall_64 entry_SYSCALL_64 entry_SYSCALL_64_after_hwframe ret_from_fork ret_from_fork_asm
kthread worker_thread process_one_work start_kernel x86_64_start_kernel
x86_64_start_reservations secondary_startup_64 secondary_startup_64_no_verify
cpu_startup_entry do_idle rest_init kernel_init
el0t_64_sync el0t_64_sync_handler el0_svc do_el0_svc el0_svc_common invoke_syscall
__invoke_syscall secondary_start_kernel
""".split())
# A blocked task's waits: its culprit is the first frame past them.
WAIT_PREFIXES = ("__schedule", "schedule", "preempt_schedule", "wait_for_", "__wait_",
                 "do_wait_for", "wait_on_", "mutex_lock", "__mutex_lock", "rwsem_down",
                 "down_", "__down", "down", "io_schedule", "msleep", "usleep", "bit_wait",
                 "out_of_line_wait", "folio_wait", "__folio_lock", "__lock_page",
                 "rt_mutex", "__rt_mutex", "percpu_down", "__percpu_down", "synchronize_rcu",
                 "__synchronize", "wait_rcu_gp", "__wait_rcu_gp", "rcu_barrier",
                 "__flush_work", "flush_work", "context_switch", "__switch_to", "finish_task_switch",
                 "do_nanosleep", "hrtimer_nanosleep", "__refrigerator", "read_events")


def base_name(function: str) -> str:
    """`panic` for `panic.cold`, `foo` for `foo.isra.0` / `foo.constprop.3`."""
    return function.split(".", 1)[0]


def is_machinery(function: str | None) -> bool:
    """True for frames of the panic/oops/exception/watchdog/allocation machinery."""
    if function is None:
        return False
    name = base_name(function)
    return name in MACHINERY or name.startswith(MACHINERY_PREFIXES)


def is_wait(function: str | None) -> bool:
    """True for the scheduler's and locks' waiting functions."""
    if function is None:
        return False
    name = base_name(function)
    return name == "down" or name.startswith(tuple(p for p in WAIT_PREFIXES if p != "down"))
