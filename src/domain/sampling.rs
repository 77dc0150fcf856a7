//! X-ray sampling and progressive examination (spec §7, after ASME B31.3 §341.3.4). A lot is one
//! welder's welded welds of one x-ray tier below 100 % and one weld type. It needs
//! ceil(welded × tier ÷ 100) welds examined. When an examined weld of the lot fails, two more welds
//! of the lot are called for; each of those that fails calls two more (one failed tracer → 2 more,
//! both failed → 4 more); when one of those fails, every weld of the lot.

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
/// for; 1: a tracer; 2: a tracer of a failed tracer): two more welds for a reject or a failed
/// tracer, every weld of the lot once a second-round tracer fails; `None` after that.
pub fn after_failure(stage: u8) -> Option<Call> {
    match stage {
        0 | 1 => Some(Call {
            stage: stage + 1,
            count: Some(2),
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
    fn failures_escalate_two_then_two_per_failed_tracer_then_the_lot() {
        assert_eq!(
            after_failure(0),
            Some(Call {
                stage: 1,
                count: Some(2)
            })
        );
        // Each failed tracer calls two more: one failed tracer 2, both 4.
        assert_eq!(
            after_failure(1).map(|c| (c.stage, c.count)),
            Some((2, Some(2)))
        );
        assert_eq!(
            after_failure(2).map(|c| (c.stage, c.count)),
            Some((3, None))
        );
        assert_eq!(after_failure(3), None);
    }
}
