//! The operator's policy: who may trace what, and with which limits.
//!
//! A TOML file (see `docs/policy.md`) names privilege levels that mirror
//! stap's groups, per-user and per-group entries with probe and builtin
//! allow/deny lists, and limits. The daemon resolves one [`TenantPolicy`]
//! per connecting user (identified by `SO_PEERCRED`, never by what the
//! client claims), then:
//! - the compiler refuses denied probes and builtins
//!   ([`TenantPolicy::restrictions`]) before anything is attached;
//! - [`TenantPolicy::scope_plans`] adds filters to every capture plan, so a
//!   restricted tenant's records are selected **in the kernel** and no
//!   record of another user's process ever reaches user space.

use std::{path::Path, time::Duration};

use serde::Deserialize;
use wasmtap_abi::{Filter, FilterCmp, FilterField, MAX_FILTERS};
use wasmtap_compiler::{
    Bundle,
    passes::restrict::{Restrictions, Rule},
};

/// Privilege levels, loosely after stap's groups.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Like `stapusr`: begin/end/error, timers, syscalls and user-space
    /// probes, all scoped in the kernel to the tenant's own processes; no
    /// kernel stacks or kernel addresses, no other users' ancestry.
    User,
    /// Like `stapsys`: every probe point, system-wide.
    Sys,
    /// Like `stapdev`: everything.
    Dev,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Sys => "sys",
            Self::Dev => "dev",
        }
    }
}

/// Probe points a `user`-level tenant may use.
const USER_PROBES: &[&str] = &[
    "begin*",
    "end*",
    "error*",
    "timer.*",
    "syscall.*",
    "process*",
];
/// Builtins that reveal kernel addresses or other users' processes.
const USER_DENIED_BUILTINS: &[&str] = &[
    "backtrace",
    "print_backtrace",
    "sprint_backtrace",
    "print_stack",
    "sprint_stack",
    "symname",
    "symdata",
    "task_parent",
];

/// Per-run limits; every field has a default so a policy may omit it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// CPU time one handler call may take.
    pub handler_budget: Duration,
    /// Memory cap of the tenant's sandbox.
    pub memory_bytes: usize,
    /// Output a tenant may produce per second before its run is stopped.
    pub output_bytes_per_s: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handler_budget: Duration::from_millis(100),
            memory_bytes: 64 << 20,
            output_bytes_per_s: 16 << 20,
        }
    }
}

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    default: Option<Entry>,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    tenant: Vec<Entry>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    handler_budget_ms: Option<u64>,
    memory_mib: Option<usize>,
    output_bytes_per_s: Option<u64>,
}

/// One `[[tenant]]` (or the `[default]`) entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    level: Option<Level>,
    allow_probes: Option<Vec<String>>,
    #[serde(default)]
    deny_probes: Vec<String>,
    #[serde(default)]
    deny_builtins: Vec<String>,
    #[serde(flatten)]
    limits: LimitsFile,
}

/// A parsed policy file.
#[derive(Debug)]
pub struct Policy {
    file: PolicyFile,
    /// For rule origins in diagnostics.
    name: String,
}

/// Who is asking, as the kernel vouches for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    /// The user's name, when it has one.
    pub user: Option<String>,
    /// Names of every group the user is in.
    pub groups: Vec<String>,
}

impl Peer {
    /// Looks up the user's name and groups from the system databases.
    pub fn from_ids(uid: u32, gid: u32) -> Self {
        let user = user_name(uid);
        let groups = user
            .as_deref()
            .map(|name| group_names(name, gid))
            .unwrap_or_default();
        Self {
            uid,
            gid,
            user,
            groups,
        }
    }
}

/// What one tenant may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantPolicy {
    pub level: Level,
    /// Checked by the compiler.
    pub restrictions: Restrictions,
    /// Only this user's processes are traced, when set.
    pub scope_uid: Option<u32>,
    pub limits: Limits,
}

/// Why a policy file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file '{path}': {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid policy file '{path}':\n{message}\n  hint: see docs/policy.md for the format")]
    Parse { path: String, message: String },
    #[error(
        "a restricted probe already has {MAX_FILTERS} in-kernel filters; the tenant scope cannot be added"
    )]
    TooManyFilters,
}

impl Policy {
    /// Reads and validates a policy file.
    ///
    /// # Errors
    /// An unreadable file, or TOML that does not match the format (with the
    /// line, column and offending text).
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses policy text; `name` is used in messages.
    ///
    /// # Errors
    /// TOML that does not match the format.
    pub fn parse(text: &str, name: &str) -> Result<Self, PolicyError> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| PolicyError::Parse {
            path: name.to_string(),
            message: e.to_string(),
        })?;
        Ok(Self {
            file,
            name: name.to_string(),
        })
    }

    /// The policy of `peer`: the first `[[tenant]]` entry naming the user
    /// (by name or uid) or one of its groups, else `[default]`; root without
    /// an entry gets `dev`, anyone else `user`.
    pub fn resolve(&self, peer: &Peer) -> TenantPolicy {
        let found = self.file.tenant.iter().enumerate().find(|(_, entry)| {
            entry
                .users
                .iter()
                .any(|u| Some(u.as_str()) == peer.user.as_deref() || u.parse() == Ok(peer.uid))
                || entry.groups.iter().any(|g| peer.groups.contains(g))
        });
        let (entry, origin) = match found {
            Some((i, entry)) => (
                Some(entry),
                format!("{}: tenant entry {}", self.name, i + 1),
            ),
            None => (
                self.file.default.as_ref(),
                format!("{}: [default]", self.name),
            ),
        };
        let level = entry.and_then(|e| e.level).unwrap_or(if peer.uid == 0 {
            Level::Dev
        } else {
            Level::User
        });
        let level_origin = format!("{} (level \"{}\")", origin, level.name());
        let mut restrictions = Restrictions::default();
        if level == Level::User {
            restrictions.allow_probes.push(
                USER_PROBES
                    .iter()
                    .map(|p| Rule::new(*p, &level_origin))
                    .collect(),
            );
            restrictions.deny_builtins = USER_DENIED_BUILTINS
                .iter()
                .map(|p| Rule::new(*p, &level_origin))
                .collect();
        }
        if let Some(entry) = entry {
            if let Some(allow) = &entry.allow_probes {
                restrictions.allow_probes.push(
                    allow
                        .iter()
                        .map(|p| Rule::new(p, format!("{origin}, allow_probes")))
                        .collect(),
                );
            }
            restrictions.deny_probes.extend(
                entry
                    .deny_probes
                    .iter()
                    .map(|p| Rule::new(p, format!("{origin}, deny_probes"))),
            );
            restrictions.deny_builtins.extend(
                entry
                    .deny_builtins
                    .iter()
                    .map(|p| Rule::new(p, format!("{origin}, deny_builtins"))),
            );
        }
        let limits = [&self.file.limits]
            .into_iter()
            .chain(entry.map(|e| &e.limits))
            .fold(Limits::default(), |mut limits, file| {
                if let Some(ms) = file.handler_budget_ms {
                    limits.handler_budget = Duration::from_millis(ms.max(1));
                }
                if let Some(mib) = file.memory_mib {
                    limits.memory_bytes = mib.max(1) << 20;
                }
                if let Some(rate) = file.output_bytes_per_s {
                    limits.output_bytes_per_s = rate.max(1);
                }
                limits
            });
        TenantPolicy {
            level,
            restrictions,
            scope_uid: (level == Level::User).then_some(peer.uid),
            limits,
        }
    }
}

impl TenantPolicy {
    /// Adds the tenant's scope to every capture plan of `bundle`, so the
    /// kernel drops other users' events before copying anything.
    ///
    /// # Errors
    /// A plan whose filter slots are all taken.
    pub fn scope_plans(&self, bundle: &mut Bundle) -> Result<(), PolicyError> {
        let Some(uid) = self.scope_uid else {
            return Ok(());
        };
        for probe in &mut bundle.probes {
            let Some(plan) = probe.plan.as_mut() else {
                continue;
            };
            let n = plan.n_filters as usize;
            if n >= MAX_FILTERS {
                return Err(PolicyError::TooManyFilters);
            }
            plan.filters[n] = Filter::new(FilterField::Uid, FilterCmp::Eq, u64::from(uid));
            plan.n_filters += 1;
        }
        Ok(())
    }
}

fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

/// The groups `user` belongs to: its primary group and every `/etc/group`
/// entry listing it.
fn group_names(user: &str, primary_gid: u32) -> Vec<String> {
    let Ok(groups) = std::fs::read_to_string("/etc/group") else {
        return Vec::new();
    };
    groups
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let gid: u32 = fields.nth(1)?.parse().ok()?;
            let members = fields.next().unwrap_or("");
            (gid == primary_gid || members.split(',').any(|m| m == user)).then(|| name.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, user: &str, groups: &[&str]) -> Peer {
        Peer {
            uid,
            gid: uid,
            user: Some(user.to_string()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    const POLICY: &str = r#"
[default]
level = "user"

[limits]
handler_budget_ms = 50

[[tenant]]
groups = ["tracing"]
level = "sys"
deny_builtins = ["system"]
memory_mib = 8

[[tenant]]
users = ["1005"]
allow_probes = ["syscall.open*"]
"#;

    #[test]
    fn entries_match_by_group_and_uid_else_default() {
        let policy = Policy::parse(POLICY, "p.toml").unwrap();
        let ops = policy.resolve(&peer(1001, "ann", &["tracing"]));
        assert_eq!(ops.level, Level::Sys);
        assert_eq!(ops.scope_uid, None);
        assert_eq!(ops.limits.memory_bytes, 8 << 20);
        assert_eq!(ops.limits.handler_budget, Duration::from_millis(50));
        assert_eq!(ops.restrictions.deny_builtins[0].pattern, "system");

        let narrowed = policy.resolve(&peer(1005, "ben", &[]));
        assert_eq!(narrowed.level, Level::User);
        assert_eq!(narrowed.scope_uid, Some(1005));
        // The level's list and the entry's list both apply.
        assert_eq!(narrowed.restrictions.allow_probes.len(), 2);

        let other = policy.resolve(&peer(1009, "cy", &[]));
        assert_eq!(other.level, Level::User);
        assert!(
            other
                .restrictions
                .deny_builtins
                .iter()
                .any(|r| r.pattern == "backtrace")
        );
    }

    #[test]
    fn root_without_an_entry_is_dev() {
        let policy = Policy::parse("", "p.toml").unwrap();
        let root = policy.resolve(&peer(0, "root", &["root"]));
        assert_eq!(root.level, Level::Dev);
        assert_eq!(root.restrictions, Restrictions::default());
        assert_eq!(root.scope_uid, None);
    }

    #[test]
    fn mistakes_name_the_line_and_the_valid_choices() {
        let error = Policy::parse("[default]\nlevel = \"usr\"\n", "p.toml").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("p.toml"), "{text}");
        assert!(text.contains("line 2"), "{text}");
        assert!(text.contains("`user`"), "{text}");
        let error = Policy::parse("[[tenant]]\nuser = [\"a\"]\n", "p.toml").unwrap_err();
        assert!(
            error.to_string().contains("unknown field `user`"),
            "{error}"
        );
    }

    #[test]
    fn scope_adds_a_uid_filter_to_every_kernel_plan() {
        let catalog = wasmtap_compiler::catalog::StaticCatalog::x86_64((6, 18, 0));
        let mut bundle = wasmtap_compiler::compile(
            "probe syscall.openat, syscall.close { } probe begin { }",
            &catalog,
            &wasmtap_compiler::CompileOptions::default(),
        )
        .unwrap();
        let policy = Policy::parse("", "p.toml").unwrap();
        let tenant = policy.resolve(&peer(1234, "dee", &[]));
        tenant.scope_plans(&mut bundle).unwrap();
        let plans: Vec<_> = bundle.probes.iter().filter_map(|p| p.plan).collect();
        assert_eq!(plans.len(), 2);
        for plan in plans {
            assert_eq!(plan.n_filters, 1);
            assert_eq!(
                plan.filters[0],
                Filter::new(FilterField::Uid, FilterCmp::Eq, 1234)
            );
        }
    }
}
