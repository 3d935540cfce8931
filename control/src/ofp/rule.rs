//! [`Rule`]: one entry of a rule table.

use super::action::OfAction;
use super::matches::Match;

/// Priority of a rule that does not say.
pub const DEFAULT_PRIORITY: u16 = 32768;

/// A rule: in table `table`, packets matching `matches` (highest priority
/// first) get `actions`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Table 0..=254.
    pub table: u8,
    /// Higher wins.
    pub priority: u16,
    /// Opaque id chosen by the controller (neutron uses it to find its rules).
    pub cookie: u64,
    /// Remove after this many idle seconds (0 = never).
    pub idle_timeout: u16,
    /// Remove this many seconds after adding (0 = never).
    pub hard_timeout: u16,
    /// The match.
    pub matches: Match,
    /// The actions (empty = drop).
    pub actions: Vec<OfAction>,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            table: 0,
            priority: DEFAULT_PRIORITY,
            cookie: 0,
            idle_timeout: 0,
            hard_timeout: 0,
            matches: Match::any(),
            actions: Vec::new(),
        }
    }
}
