//! Named link profiles (`lan`, `cable`, `dsl`, `4g`, `3g`, `2g`/`edge`, `satellite`): the
//! figures each stands for and where they come from.
//!
//! A profile sets `rtt`, `down` and `up`; it leaves `jitter` and `loss` at zero and the
//! queue at its default, as its sources do. `PROFILES.md` holds the same table with the
//! reasoning; keep the two in step.
//!
//! | name | rtt | down | up | source |
//! |---|---|---|---|---|
//! | `lan` | 1 ms | 1 Gbit/s | 1 Gbit/s | switched Gigabit Ethernet (IEEE 802.3ab); 1 ms rounds up a sub-ms LAN RTT |
//! | `cable` | 28 ms | 5 Mbit/s | 1 Mbit/s | WebPageTest `Cable` connectivity preset |
//! | `dsl` | 50 ms | 1.5 Mbit/s | 384 kbit/s | WebPageTest `DSL` preset |
//! | `4g` | 170 ms | 9 Mbit/s | 9 Mbit/s | WebPageTest `4G` preset |
//! | `3g` | 300 ms | 1.6 Mbit/s | 768 kbit/s | WebPageTest `3G` preset |
//! | `2g` (`edge`) | 840 ms | 240 kbit/s | 200 kbit/s | WebPageTest `Edge` preset |
//! | `satellite` | 600 ms | 25 Mbit/s | 3 Mbit/s | GEO: 4 × 35,786 km / c ≈ 477 ms minimum RTT; FCC Measuring Broadband America reports ≈ 600 ms for GEO services; 25/3 Mbit/s is a common GEO plan |

use std::time::Duration;

/// A named link profile; see the module docs for each one's figures and source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Switched Gigabit Ethernet: 1 ms RTT, 1 Gbit/s each way.
    Lan,
    /// WebPageTest `Cable`: 28 ms RTT, 5 Mbit/s down, 1 Mbit/s up.
    Cable,
    /// WebPageTest `DSL`: 50 ms RTT, 1.5 Mbit/s down, 384 kbit/s up.
    Dsl,
    /// WebPageTest `4G`: 170 ms RTT, 9 Mbit/s each way.
    FourG,
    /// WebPageTest `3G`: 300 ms RTT, 1.6 Mbit/s down, 768 kbit/s up.
    ThreeG,
    /// WebPageTest `Edge` (also spelled `2g` here): 840 ms RTT, 240 kbit/s down, 200 up.
    TwoG,
    /// Geostationary satellite: 600 ms RTT, 25 Mbit/s down, 3 Mbit/s up.
    Satellite,
}

/// The figures a profile sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileFigures {
    /// Two-way propagation delay.
    pub rtt: Duration,
    /// Host → client rate, bit/s.
    pub down_bps: u64,
    /// Client → host rate, bit/s.
    pub up_bps: u64,
}

impl Profile {
    /// Every profile, in the order error messages list them.
    pub const ALL: [Profile; 7] = [
        Profile::Lan,
        Profile::Cable,
        Profile::Dsl,
        Profile::FourG,
        Profile::ThreeG,
        Profile::TwoG,
        Profile::Satellite,
    ];

    /// The canonical name, as `Display` of a spec writes it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Lan => "lan",
            Profile::Cable => "cable",
            Profile::Dsl => "dsl",
            Profile::FourG => "4g",
            Profile::ThreeG => "3g",
            Profile::TwoG => "2g",
            Profile::Satellite => "satellite",
        }
    }

    /// Looks a profile up by name or alias (`edge` = `2g`), case-insensitively.
    pub fn from_name(name: &str) -> Option<Profile> {
        let lower = name.to_ascii_lowercase();
        if lower == "edge" {
            return Some(Profile::TwoG);
        }
        Profile::ALL.into_iter().find(|p| p.name() == lower)
    }

    /// The valid names, for error messages.
    pub fn valid_names() -> String {
        let names: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
        format!("{}, edge (= 2g)", names.join(", "))
    }

    /// The profile's figures.
    pub fn figures(self) -> ProfileFigures {
        let (rtt_ms, down_bps, up_bps) = match self {
            Profile::Lan => (1, 1_000_000_000, 1_000_000_000),
            Profile::Cable => (28, 5_000_000, 1_000_000),
            Profile::Dsl => (50, 1_500_000, 384_000),
            Profile::FourG => (170, 9_000_000, 9_000_000),
            Profile::ThreeG => (300, 1_600_000, 768_000),
            Profile::TwoG => (840, 240_000, 200_000),
            Profile::Satellite => (600, 25_000_000, 3_000_000),
        };
        ProfileFigures {
            rtt: Duration::from_millis(rtt_ms),
            down_bps,
            up_bps,
        }
    }
}
