//! Benchmarks of the Renkei hub. See `benches/`: `brokerage.rs` (brokered requests against
//! direct provider fetches), `consent_check.rs` (the consent check against Cedar), `log.rs`
//! (the transparency log), `identity.rs` and `locator_sync.rs` (providers' locator syncs).
//! Run them with `cargo bench -p renkei-bench`.
//!
//! The library holds the allocator the `renkei` binary ships with, so that every benchmark
//! (each says `use renkei_bench as _;`) measures the hub as it runs, and the parsers the
//! benchmarks need, kept here so that they are tested (benches have no test harness).

/// The `renkei` binary's global allocator (see its `main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The CPU that has taken most of the block devices' interrupts (virtio-blk request queues,
/// NVMe, AHCI) in `table`, the text of Linux's `/proc/interrupts`: a header naming one
/// column per CPU, then one line per interrupt with a count per CPU. `None` if no line is a
/// block device's or none has counted anything. Unreadable counts count as zero.
pub fn disk_interrupt_cpu(table: &str) -> Option<usize> {
    let mut lines = table.lines();
    let cpus = lines.next()?.split_whitespace().count();
    let mut per_cpu = vec![0u64; cpus];
    for line in lines {
        let is_disk = line.contains("-req.") || line.contains("nvme") || line.contains("ahci");
        if !is_disk {
            continue;
        }
        let counts = line.split_whitespace().skip(1).take(cpus);
        for (total, count) in per_cpu.iter_mut().zip(counts) {
            *total = total.saturating_add(count.parse::<u64>().unwrap_or(0));
        }
    }
    let (cpu, &most) = per_cpu.iter().enumerate().rev().max_by_key(|(_, n)| **n)?;
    (most > 0).then_some(cpu)
}

/// Clock ticks the hypervisor gave to something else while a CPU had work (`steal`), summed
/// over the CPUs of `stat`, the text of Linux's `/proc/stat`: one line per CPU, `cpuN user
/// nice system idle iowait irq softirq steal …`. The all-CPU line `cpu` is not counted again;
/// a CPU line without a readable steal column counts zero.
pub fn stolen_ticks(stat: &str) -> u64 {
    stat.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let cpu = fields.next()?.strip_prefix("cpu")?;
            if cpu.is_empty() || !cpu.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            fields.nth(7)?.parse::<u64>().ok()
        })
        .fold(0, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::{disk_interrupt_cpu, stolen_ticks};
    use proptest::prelude::*;

    /// Read off a 2-vCPU Firecracker guest (2026-12-03), abridged.
    const FIRECRACKER: &str = "           CPU0       CPU1       
 24:          1          0  IO-APIC   5-edge      ACPI:Ged
 32:        526          0 PCI-MSIX-0000:00:01.0   4-edge      virtio0-reporting_vq
 36:          0    1514653 PCI-MSIX-0000:00:02.0   1-edge      virtio1-req.0
 39:       2661          0 PCI-MSIX-0000:00:03.0   2-edge      virtio2-output.0
NMI:          0          0   Non-maskable interrupts
LOC:     758539     801275   Local timer interrupts
";

    #[test]
    fn the_cpu_taking_the_virtio_disk_interrupts_is_found() {
        assert_eq!(disk_interrupt_cpu(FIRECRACKER), Some(1));
    }

    #[test]
    fn nvme_queues_spread_over_cpus_add_up() {
        let table = "      CPU0  CPU1  CPU2
 40:  10  0  0  PCI-MSI 1048576-edge  nvme0q0
 41:  0  300  0  PCI-MSI 1048577-edge  nvme0q1
 42:  0  0  200  PCI-MSI 1048578-edge  nvme0q2
 43:  250  0  0  PCI-MSI 1048579-edge  nvme0q3
";
        assert_eq!(disk_interrupt_cpu(table), Some(1));
    }

    #[test]
    fn a_machine_whose_disks_took_no_interrupt_names_no_cpu() {
        let idle = FIRECRACKER.replace("1514653", "0");
        assert_eq!(disk_interrupt_cpu(&idle), None);
        assert_eq!(disk_interrupt_cpu(""), None);
        assert_eq!(
            disk_interrupt_cpu("CPU0 CPU1\n 24: 5 5 IO-APIC ACPI:Ged\n"),
            None
        );
    }

    /// Read off the same kind of guest under load (2026-12-03), abridged.
    const STAT: &str = "cpu  84520 12 20710 173500 1201 0 3391 2113 0 0
cpu0 42011 5 10420 86900 633 0 1702 1050 0 0
cpu1 42509 7 10290 86600 568 0 1689 1063 0 0
intr 53958274 0 9 0
ctxt 96512840
";

    #[test]
    fn steal_is_summed_over_the_cpu_lines_not_the_total_line() {
        assert_eq!(stolen_ticks(STAT), 1050 + 1063);
    }

    #[test]
    fn a_kernel_without_a_steal_column_reports_none_stolen() {
        assert_eq!(stolen_ticks("cpu 1 2 3 4\ncpu0 1 2 3 4\n"), 0);
        assert_eq!(stolen_ticks(""), 0);
        assert_eq!(stolen_ticks("cpux 1 2 3 4 5 6 7 8\n"), 0);
    }

    proptest! {
        /// Whatever the text, the parser answers (no panic, no overflow).
        #[test]
        fn any_stat_text_is_read_without_failing(stat in "(?s).{0,600}") {
            let _ = stolen_ticks(&stat);
        }

        /// Each CPU's steal column is counted once, whatever the other columns hold.
        #[test]
        fn every_cpus_steal_is_counted(rows in proptest::collection::vec((proptest::collection::vec(0u64..1_000_000, 7), 0u64..1_000_000), 1..8)) {
            let mut stat = String::from("cpu  1 2 3 4 5 6 7 99999 0 0\n");
            for (cpu, (before, steal)) in rows.iter().enumerate() {
                let before: Vec<String> = before.iter().map(u64::to_string).collect();
                stat.push_str(&format!("cpu{cpu} {} {steal} 0 0\n", before.join(" ")));
            }
            prop_assert_eq!(stolen_ticks(&stat), rows.iter().map(|(_, s)| s).sum::<u64>());
        }

        /// Whatever the text, the answer is a CPU column of its header, or none.
        #[test]
        fn any_text_yields_a_cpu_of_the_header_or_none(table in "(?s).{0,600}") {
            let columns = table.lines().next().map_or(0, |h| h.split_whitespace().count());
            if let Some(cpu) = disk_interrupt_cpu(&table) {
                prop_assert!(cpu < columns);
            }
        }

        /// The CPU with the largest count of disk interrupts is named (the first on a tie).
        #[test]
        fn the_largest_count_wins(counts in proptest::collection::vec(0u64..1_000_000, 1..8)) {
            let header: Vec<String> = (0..counts.len()).map(|c| format!("CPU{c}")).collect();
            let row: Vec<String> = counts.iter().map(u64::to_string).collect();
            let table = format!(
                "{}\n 36: {} PCI-MSIX-0000:00:02.0 1-edge virtio1-req.0\n",
                header.join(" "),
                row.join(" ")
            );
            let most = counts.iter().copied().max().unwrap_or(0);
            let expected = counts.iter().position(|&n| n == most).filter(|_| most > 0);
            prop_assert_eq!(disk_interrupt_cpu(&table), expected);
        }
    }
}
