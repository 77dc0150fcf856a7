//! Man-hour budgets (spec §11): the weight a budget is spread by. A component weighs its diameter
//! to the power 1.5 — a reducer the mean of its sizes, pipe and threaded pipe that times its linear
//! feet times 0.1 — and a component whose size can't be read (or has none) weighs 0.5 in its
//! diameter's place, with a warning. Sizes are the normalized ones (`1.5`, `2X1`, `NOSIZE`).

/// A component's spread weight, and whether its size had to be guessed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weight {
    pub value: f64,
    pub guessed: bool,
}

/// The mean of a normalized size's parts in inches; `None` when any part is not a positive number.
pub fn diameter(size: &str) -> Option<f64> {
    let parts: Vec<f64> = size
        .split('X')
        .map(|p| {
            p.trim()
                .parse::<f64>()
                .ok()
                .filter(|d| d.is_finite() && *d > 0.0)
        })
        .collect::<Option<Vec<f64>>>()?;
    if parts.is_empty() {
        return None;
    }
    Some(parts.iter().sum::<f64>() / parts.len() as f64)
}

/// The weight of one component of `component_type` with normalized `size` and `quantity` (linear
/// feet for pipe and threaded pipe).
pub fn weight(component_type: &str, size: &str, quantity: f64) -> Weight {
    let (base, guessed) = match diameter(size) {
        Some(d) => (d.powf(1.5), false),
        None => (0.5, true),
    };
    let value = match component_type {
        "pipe" | "threaded_pipe" => base * quantity.max(0.0) * 0.1,
        _ => base,
    };
    Weight { value, guessed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn diameters_read_plain_and_reducing_sizes() {
        assert_eq!(diameter("2"), Some(2.0));
        assert_eq!(diameter("0.75"), Some(0.75));
        assert_eq!(diameter("4X2"), Some(3.0));
        assert_eq!(diameter("NOSIZE"), None);
        assert_eq!(diameter("2X"), None);
        assert_eq!(diameter("SPECIAL"), None);
        assert_eq!(diameter("0"), None);
    }

    #[test]
    fn weights_follow_the_spread_rule() {
        assert!(close(weight("valve", "4", 1.0).value, 8.0));
        assert!(close(weight("fitting", "6X2", 1.0).value, 8.0));
        let pipe = weight("pipe", "4", 25.0);
        assert!(close(pipe.value, 8.0 * 25.0 * 0.1));
        let odd = weight("valve", "SPECIAL", 1.0);
        assert!(odd.guessed && close(odd.value, 0.5));
        assert!(close(weight("threaded_pipe", "NOSIZE", 10.0).value, 0.5));
    }
}
