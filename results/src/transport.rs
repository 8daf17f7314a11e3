//! The transport enum: the one type every crate names a transport with.
//!
//! A leaf module: it imports nothing of feedbench's, so the load generator's scenarios, the
//! results types and the report can all use it without pointing at each other. Each
//! transport has one spelling in code (`ShortPoll`) and one for users (`short-poll`), used
//! alike by the CLI, the JSON, file names and chart legends.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A transport, spelled `short-poll`, `long-poll`, `ws`, `sse` for users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// `GET /poll` on a fixed schedule.
    ShortPoll,
    /// `GET /longpoll`, re-sent as soon as each response arrives.
    LongPoll,
    /// One WebSocket per client.
    Ws,
    /// One `GET /sse` stream per client.
    Sse,
}

impl Transport {
    /// All transports, in the order reports list them.
    pub const ALL: [Transport; 4] = [
        Transport::ShortPoll,
        Transport::LongPoll,
        Transport::Ws,
        Transport::Sse,
    ];

    /// The user spelling: `short-poll`, `long-poll`, `ws`, `sse`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::ShortPoll => "short-poll",
            Transport::LongPoll => "long-poll",
            Transport::Ws => "ws",
            Transport::Sse => "sse",
        }
    }

    /// The server's `/stats` byte-counter class for this transport (PROTOCOL.md), also the
    /// results' `server.class`.
    pub fn stats_class(self) -> &'static str {
        match self {
            Transport::ShortPoll => "short_poll",
            Transport::LongPoll => "long_poll",
            Transport::Ws => "ws",
            Transport::Sse => "sse",
        }
    }

    /// Whether clients send requests to receive events (short-poll and long-poll).
    pub fn is_polling(self) -> bool {
        matches!(self, Transport::ShortPoll | Transport::LongPoll)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Transport::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!("unknown transport {s:?} (expected short-poll, long-poll, ws or sse)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spelling_for_users_everywhere() {
        for t in Transport::ALL {
            assert_eq!(t.as_str().parse::<Transport>(), Ok(t));
            assert_eq!(t.to_string(), t.as_str());
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                serde_json::Value::from(t.as_str())
            );
        }
        assert!("websocket".parse::<Transport>().is_err());
        assert_eq!(
            Transport::ALL.map(Transport::stats_class),
            ["short_poll", "long_poll", "ws", "sse"]
        );
        assert_eq!(
            Transport::ALL.map(Transport::is_polling),
            [true, true, false, false]
        );
    }
}
