//! X-ray sampling and progressive examination (spec §7, after ASME B31.3 §341.3.4). A lot is one
//! welder's welded welds of one x-ray tier below 100 % and one weld type. It needs
//! ceil(welded × tier ÷ 100) welds examined. When an examined weld of the lot fails, two more welds
//! of the lot are called for; when one of those fails, two more per failed weld of the progression
//! (the first reject and the failed tracers: one failed tracer calls four more); when one of those
//! fails, every weld of the lot.

/// Examinations a lot of `welded` welds needs at `tier` percent.
pub fn required(welded: u32, tier: u32) -> u32 {
    (u64::from(welded) * u64::from(tier)).div_ceil(100) as u32
}

/// What a failed examination calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// 1 and 2: tracers; 3: the whole lot.
    pub stage: u8,
    /// Welds to call for; `None`: every weld of the lot not yet examined.
    pub count: Option<u32>,
}

/// The call a FAIL of a weld at `stage` brings (0: a weld examined for the sample, not called
/// for), `failed` being the failed welds of the lot's progression so far, this one included;
/// `None` once the whole lot is called for.
pub fn after_failure(stage: u8, failed: u32) -> Option<Call> {
    let per_failed = Some(failed.max(1).saturating_mul(2));
    match stage {
        0 => Some(Call {
            stage: 1,
            count: per_failed,
        }),
        1 => Some(Call {
            stage: 2,
            count: per_failed,
        }),
        2 => Some(Call {
            stage: 3,
            count: None,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_examinations_round_up() {
        assert_eq!(required(40, 5), 2);
        assert_eq!(required(41, 5), 3);
        assert_eq!(required(1, 5), 1);
        assert_eq!(required(0, 5), 0);
        assert_eq!(required(20, 10), 2);
        assert_eq!(required(u32::MAX, 100), u32::MAX);
    }

    #[test]
    fn failures_escalate_two_then_two_per_failure_then_the_lot() {
        assert_eq!(
            after_failure(0, 1),
            Some(Call {
                stage: 1,
                count: Some(2)
            })
        );
        // The first reject and one failed tracer: four more.
        assert_eq!(
            after_failure(1, 2).map(|c| (c.stage, c.count)),
            Some((2, Some(4)))
        );
        assert_eq!(
            after_failure(2, 3).map(|c| (c.stage, c.count)),
            Some((3, None))
        );
        assert_eq!(after_failure(3, 4), None);
    }
}
