//! [`run_with_faults`]: a pool run through a [`FaultTarget`], accounted as a [`FaultReport`].

use std::sync::Arc;

use super::report::FaultReport;
use super::target::FaultTarget;
use crate::pool::{run, CancellationToken, PoolConfig, PoolResult, RequestSource};
use crate::Result;

/// Runs `config` against `target` with requests from `source` and accounts every request.
/// Records are kept for the accounting (compacted: first and last token chunk, unless
/// `config.keep_records` was set); the returned result holds them only if `config.keep_records`
/// was set. Stalls still in progress are released at the end.
pub async fn run_with_faults(
    target: &FaultTarget,
    source: &mut RequestSource,
    config: &PoolConfig,
    cancel: CancellationToken,
) -> Result<(PoolResult, FaultReport)> {
    target.plan().validate()?;
    target.retry().validate()?;
    // Every request is accounted, but unless the caller asked for whole records only their first
    // and last token chunks are held: the gaps are already in the histograms.
    let mut with_records = config.clone();
    with_records.keep_records = true;
    with_records.compact_records = !config.keep_records;
    let outcome = run(Arc::new(target.clone()), source, &with_records, cancel).await;
    target.release_stalls();
    let mut result = outcome?;
    let losses = target
        .managed_engine()
        .map(|e| e.device_losses())
        .unwrap_or_default();
    let report = FaultReport::build(&result.records, &target.journal(), target.events(), losses);
    result.config.keep_records = config.keep_records;
    result.config.compact_records = config.compact_records;
    if !config.keep_records {
        result.records = Vec::new();
    }
    Ok((result, report))
}
