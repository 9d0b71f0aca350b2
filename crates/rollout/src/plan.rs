//! Which nodes a rolling reboot takes, and in what order.

use crate::gates::Role;

/// The order nodes are rebooted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Agents first, servers last (each group in the order given): the
    /// control plane is touched only once the workers proved the procedure.
    #[default]
    AgentsFirst,
    /// Exactly as given.
    AsGiven,
}

/// The rollout's node order: `selected` (names, in the operator's order)
/// arranged by `order`, using each node's role from `roles`. Unknown names
/// are returned as the error, all of them.
pub fn order(
    roles: &[(String, Role)],
    selected: &[String],
    order: Order,
) -> Result<Vec<String>, Vec<String>> {
    let role = |name: &str| roles.iter().find(|(n, _)| n == name).map(|(_, r)| *r);
    let unknown: Vec<String> = selected
        .iter()
        .filter(|n| role(n).is_none())
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    let mut out: Vec<String> = Vec::new();
    for name in selected {
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    if order == Order::AgentsFirst {
        // A stable sort keeps the operator's order within each group.
        out.sort_by_key(|n| role(n) == Some(Role::Server));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles() -> Vec<(String, Role)> {
        vec![
            ("boromir".into(), Role::Server),
            ("theoden".into(), Role::Agent),
            ("samwise".into(), Role::Server),
            ("merry".into(), Role::Agent),
        ]
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn agents_go_first_in_the_order_given() {
        let plan = order(
            &roles(),
            &names(&["samwise", "merry", "boromir", "theoden"]),
            Order::AgentsFirst,
        )
        .expect("plan");
        assert_eq!(plan, names(&["merry", "theoden", "samwise", "boromir"]));
        let given = order(&roles(), &names(&["samwise", "merry"]), Order::AsGiven).expect("plan");
        assert_eq!(given, names(&["samwise", "merry"]));
    }

    #[test]
    fn unknown_and_repeated_names() {
        assert_eq!(
            order(
                &roles(),
                &names(&["nope", "boromir", "gone"]),
                Order::AsGiven
            ),
            Err(names(&["nope", "gone"]))
        );
        assert_eq!(
            order(&roles(), &names(&["boromir", "boromir"]), Order::AsGiven),
            Ok(names(&["boromir"]))
        );
    }
}
