//! Pass 2c: what an operator's policy forbids, refused at compile time.
//!
//! A multi-tenant host lets each user trace only what the operator allows.
//! The host turns its policy file into [`Restrictions`]; this pass checks
//! every resolved probe and every builtin call against them, so a denied
//! script fails with a diagnostic that names the rule before anything is
//! attached. (The in-kernel scope — which processes a tenant may see — is
//! not the compiler's business: the host adds filters to every plan.)

use crate::{
    diagnostics::Diagnostic,
    passes::{resolve::ResolvedProbe, types},
    syntax::ast::{ExprKind, Item, Script},
};

/// Probe and builtin patterns a script must respect.
///
/// Patterns are globs over the probe's printed name (`syscall.openat`,
/// `timer.s(1)`, `process("/bin/ls").function("main")`) or the builtin's
/// name: `*` matches any run of characters, `?` any one character.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restrictions {
    /// Allow lists: a probe must match a rule of every list (a level's list
    /// and a tenant's own list narrow each other). No list allows all.
    pub allow_probes: Vec<Vec<Rule>>,
    /// No probe may match one of these.
    pub deny_probes: Vec<Rule>,
    /// No builtin call may match one of these.
    pub deny_builtins: Vec<Rule>,
}

impl Restrictions {
    /// The rule denying builtin `name`, if one does: plugins have no
    /// builtin calls, so the host asks this of what their captures reveal
    /// (kernel stacks are `backtrace()`'s).
    pub fn denies_builtin(&self, name: &str) -> Option<&Rule> {
        self.deny_builtins.iter().find(|r| r.matches(name))
    }
}

/// One pattern and where it came from, so a refusal can name the rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub pattern: String,
    /// E.g. `policy.toml: level "user"` or `policy.toml: tenant 2, deny_probes`.
    pub origin: String,
}

impl Rule {
    /// A rule matching `pattern`, described by `origin` in diagnostics.
    pub fn new(pattern: impl Into<String>, origin: impl Into<String>) -> Self {
        Self {
            pattern: pattern.into(),
            origin: origin.into(),
        }
    }

    fn matches(&self, name: &str) -> bool {
        glob_match(self.pattern.as_bytes(), name.as_bytes())
    }
}

/// Checks `probes` and the builtin calls of `script` against `restrictions`.
///
/// # Errors
/// One diagnostic per denied probe point and per denied builtin call site.
pub fn check(
    script: &Script,
    probes: &[ResolvedProbe],
    restrictions: &Restrictions,
) -> Result<(), Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut refused_items = Vec::new();
    for probe in probes {
        // A wildcard expands to many probes; report its point once.
        if refused_items.contains(&probe.span) {
            continue;
        }
        if let Some(diagnostic) = check_probe(probe, restrictions) {
            refused_items.push(probe.span);
            errors.push(diagnostic);
        }
    }
    let user_functions: Vec<&str> = script
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Function(f) => Some(f.name.name.as_str()),
            _ => None,
        })
        .collect();
    for item in &script.items {
        let body = match item {
            Item::Probe(p) => &p.body,
            Item::Function(f) => &f.body,
            Item::Global(_) => continue,
        };
        types::visit_block(body, &mut |expr| {
            let ExprKind::Call { name, .. } = &expr.kind else {
                return;
            };
            // A script function may share a builtin's name only where
            // the builtin does not exist; either way it is the script's code.
            if user_functions.contains(&name.name.as_str()) {
                return;
            }
            if let Some(rule) = restrictions
                .deny_builtins
                .iter()
                .find(|r| r.matches(&name.name))
            {
                errors.push(
                    Diagnostic::error(
                        format!("the policy does not allow `{}()`", name.name),
                        name.span,
                        format!("denied by {} (`{}`)", rule.origin, rule.pattern),
                    )
                    .with_hint("ask the operator, or trace without this function"),
                );
            }
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_probe(probe: &ResolvedProbe, restrictions: &Restrictions) -> Option<Diagnostic> {
    if let Some(rule) = restrictions
        .deny_probes
        .iter()
        .find(|r| r.matches(&probe.name))
    {
        return Some(
            Diagnostic::error(
                format!("the policy does not allow probe `{}`", probe.name),
                probe.span,
                format!("denied by {} (`{}`)", rule.origin, rule.pattern),
            )
            .with_hint("nothing was attached; ask the operator for this probe point"),
        );
    }
    let allowed = restrictions
        .allow_probes
        .iter()
        .find(|list| !list.iter().any(|r| r.matches(&probe.name)))?;
    let patterns: Vec<&str> = allowed.iter().map(|r| r.pattern.as_str()).collect();
    let origin = allowed.first().map_or("the policy", |r| r.origin.as_str());
    Some(
        Diagnostic::error(
            format!("the policy does not allow probe `{}`", probe.name),
            probe.span,
            format!("not in the probes allowed by {origin}"),
        )
        .with_hint(format!("allowed here: {}", patterns.join(", "))),
    )
}

/// Shell-style glob: `*` any run, `?` any one byte.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match(b"syscall.*", b"syscall.openat"));
        assert!(glob_match(b"timer.*", b"timer.s(1)"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"syscall.open?t", b"syscall.openat"));
        assert!(!glob_match(b"syscall.open", b"syscall.openat"));
        assert!(!glob_match(b"kernel.*", b"syscall.openat"));
        assert!(glob_match(
            b"process*",
            b"process(\"/bin/ls\").function(\"main\")"
        ));
    }
}
