//! The machine a run measures on, named in every report: figures compare only with figures of
//! the same cores, load and build profile.

use std::fmt;

/// The machine a run shares: its cores, how busy it was, and how the binary was built.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Machine {
    /// Cores available to this process.
    pub cores: usize,
    /// `/proc/loadavg`'s one-minute figure when the run began, where there is one.
    pub load: Option<f64>,
    /// The cargo profile this binary was built with (`debug` for `dev`): `maxperf` builds
    /// blocks faster than `release`, so figures of the two do not compare.
    pub profile: &'static str,
}

impl Machine {
    /// This machine now.
    pub fn now() -> Self {
        Self {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            // Absent off Linux; then the report just leaves it out.
            load: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|text| text.split_whitespace().next()?.parse().ok()),
            profile: env!("COBUILD_BUILD_PROFILE"),
        }
    }
}

/// `2 cores, load average 0.33 at the start; built with the release profile`.
impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} cores", self.cores)?;
        if let Some(load) = self.load {
            write!(f, ", load average {load:.2} at the start")?;
        }
        write!(f, "; built with the {} profile", self.profile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_the_line_leaves_out_a_load_it_could_not_read() {
        let mut machine = Machine {
            cores: 2,
            load: Some(0.333),
            profile: "maxperf",
        };
        assert_eq!(
            machine.to_string(),
            "2 cores, load average 0.33 at the start; built with the maxperf profile"
        );
        machine.load = None;
        assert_eq!(
            machine.to_string(),
            "2 cores; built with the maxperf profile"
        );
    }
}
