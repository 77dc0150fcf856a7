//! Work dates and weekly locks (spec §5). Weeks run Monday–Sunday; a week locks at Tuesday 09:00
//! (project time) after it ends. Dates are days since 1970-01-01 and times are seconds since
//! 1970-01-01 00:00 on the project's local clock, so no time-zone arithmetic happens here: the
//! database converts `now()` into the project's zone first.

use super::error::DomainError;

const DAY: i64 = 86_400;
/// The lock falls on the Tuesday after the week's Sunday, at 09:00.
const LOCK_AFTER_SUNDAY: i64 = 2 * DAY + 9 * 3_600;

/// Monday = 0 … Sunday = 6 (1970-01-01 was a Thursday).
pub fn weekday(days: i64) -> i64 {
    (days + 3).rem_euclid(7)
}

/// The local moment the week holding `work_date` locks.
pub fn lock_moment(work_date: i64) -> i64 {
    let sunday = work_date + (6 - weekday(work_date));
    sunday * DAY + LOCK_AFTER_SUNDAY
}

/// The Sunday (a date) ending the latest week that has locked by `local_now`: the week before
/// last until Tuesday 09:00, last week from then on.
pub fn last_locked_sunday(local_now: i64) -> i64 {
    let today = local_now.div_euclid(DAY);
    let last_sunday = today - weekday(today) - 1;
    if local_now >= lock_moment(last_sunday) {
        last_sunday
    } else {
        last_sunday - 7
    }
}

/// Refuses a future work date, and a date in a locked week unless the caller is exempt
/// (owners and admins) or the project has no week lock.
pub fn check(
    work_date: i64,
    local_now: i64,
    week_lock: bool,
    exempt: bool,
) -> Result<(), DomainError> {
    let today = local_now.div_euclid(DAY);
    if work_date > today {
        return Err(DomainError::WorkDateInFuture);
    }
    if week_lock && !exempt && local_now >= lock_moment(work_date) {
        return Err(DomainError::WorkWeekLocked);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-23 is a Monday: days since the epoch.
    const MON: i64 = 20_780;

    fn at(day: i64, hour: i64, minute: i64, second: i64) -> i64 {
        day * DAY + hour * 3_600 + minute * 60 + second
    }

    #[test]
    fn weekdays() {
        assert_eq!(weekday(0), 3); // Thursday
        assert_eq!(weekday(MON), 0);
        assert_eq!(weekday(MON + 6), 6);
        assert_eq!(weekday(-1), 2); // 1969-12-31, a Wednesday
    }

    #[test]
    fn the_week_locks_at_tuesday_nine() {
        let last_week_friday = MON - 3;
        // This week's Tuesday 08:59:59: last week is still open.
        assert_eq!(
            check(last_week_friday, at(MON + 1, 8, 59, 59), true, false),
            Ok(())
        );
        // 09:00:00 sharp: locked.
        assert_eq!(
            check(last_week_friday, at(MON + 1, 9, 0, 0), true, false),
            Err(DomainError::WorkWeekLocked)
        );
        // Sunday is the last day of its week, Monday the first of the next.
        assert_eq!(
            check(MON - 1, at(MON + 1, 9, 0, 0), true, false),
            Err(DomainError::WorkWeekLocked)
        );
        assert_eq!(check(MON, at(MON + 1, 9, 0, 0), true, false), Ok(()));
    }

    #[test]
    fn owners_admins_and_unlocked_projects_are_exempt() {
        let old = MON - 30;
        let now = at(MON + 2, 12, 0, 0);
        assert_eq!(check(old, now, true, true), Ok(()));
        assert_eq!(check(old, now, false, false), Ok(()));
        assert_eq!(
            check(old, now, true, false),
            Err(DomainError::WorkWeekLocked)
        );
    }

    #[test]
    fn future_dates_are_refused_even_for_the_exempt() {
        let now = at(MON, 23, 59, 59);
        assert_eq!(check(MON, now, true, false), Ok(()));
        assert_eq!(
            check(MON + 1, now, true, true),
            Err(DomainError::WorkDateInFuture)
        );
        assert_eq!(check(MON + 1, at(MON + 1, 0, 0, 0), true, false), Ok(()));
    }

    #[test]
    fn the_last_locked_week_ends_on_a_sunday() {
        // Monday and Tuesday 08:59 of this week: the week before last is the last locked one.
        assert_eq!(last_locked_sunday(at(MON, 12, 0, 0)), MON - 8);
        assert_eq!(last_locked_sunday(at(MON + 1, 8, 59, 59)), MON - 8);
        // From Tuesday 09:00 to Sunday night: last week.
        assert_eq!(last_locked_sunday(at(MON + 1, 9, 0, 0)), MON - 1);
        assert_eq!(last_locked_sunday(at(MON + 6, 23, 59, 59)), MON - 1);
        assert_eq!(weekday(last_locked_sunday(at(MON + 3, 1, 0, 0))), 6);
    }
}
