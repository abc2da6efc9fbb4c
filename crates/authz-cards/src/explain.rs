//! Why the card authorizer decides what it decides: the facts behind a decision and, per
//! requested action, granted or denied and why.

use cardgate_store::MembershipRole;
use cardgate_token::{Action, ActionSet, Scope};
use serde::Serialize;

/// The facts a decision on one repository rests on. [`Assessment::allowed`] is derived from
/// the others exactly as the authorizer derives it.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    pub repository: String,
    /// The org owning the namespace (`org-<first path component>`).
    pub org: String,
    pub image_exists: bool,
    /// This request created the image (a first push).
    pub image_created: bool,
    /// No active image, but a deactivated one had the name: a push does not recreate it.
    pub retired: bool,
    pub public: bool,
    /// The session's `data.scope`, if any, admits the image.
    pub in_session_scope: bool,
    /// The image's markers (the org's, for an image a push would create).
    pub markers: Vec<String>,
    /// Markers none of whose `+`-parts is among the actor's markers.
    pub unmatched_markers: Vec<String>,
    /// A read schema of one of the actor's roles admits the image.
    pub readable_by_role: bool,
    /// The actor's membership role in the owning org.
    pub membership: Option<MembershipRole>,
    /// Actions explicit grants to the actor or its orgs add.
    pub granted: Vec<String>,
    /// The owning org is over its storage quota: push is refused (pull and delete are not).
    pub over_quota: bool,
    pub allowed: ActionSet,
}

/// What a decision was about.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    /// `user-admin` may do anything its session's scope, if any, admits (for the catalog: a
    /// scope that admits every card). Outside its scope, it is judged as anyone else.
    Admin,
    Repository(Assessment),
    /// A repository name without a namespace (`acme`): the card store neither grants nor
    /// creates it.
    NoNamespace,
    Catalog {
        allowed: bool,
        /// A role of the actor has `data.catalog = true` (or the actor is `user-admin`).
        by_role: bool,
        /// No session scope, or one admitting every card (`true`, `{}`): the catalog lists
        /// every repository, so a narrower scope never gets it.
        scope_admits_everything: bool,
    },
    /// A scope type the card store has no rules for: nothing is granted.
    Unknown,
}

/// The facts behind one decision.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The actor's slug (`user-guest` for anonymous requests).
    pub actor: String,
    pub subject: Subject,
}

/// One requested action: granted or not, and why.
#[derive(Debug, Clone, Serialize)]
pub struct ActionVerdict {
    pub action: &'static str,
    pub granted: bool,
    pub reasons: Vec<String>,
}

/// The membership role an action needs from the owning org.
fn needed_role(action: Action) -> MembershipRole {
    match action {
        Action::Pull => MembershipRole::Viewer,
        Action::Push => MembershipRole::Developer,
        Action::Delete => MembershipRole::Maintainer,
        Action::All => MembershipRole::Owner,
    }
}

impl Assessment {
    fn visible(&self) -> bool {
        self.in_session_scope && self.unmatched_markers.is_empty() && self.readable_by_role
    }

    /// What is in the way of the image being visible to the actor.
    fn visibility_gaps(&self) -> Vec<String> {
        let mut gaps = Vec::new();
        if !self.in_session_scope {
            gaps.push("the session's scope does not admit the image".to_owned());
        }
        if !self.unmatched_markers.is_empty() {
            gaps.push(format!(
                "the actor matches none of the parts of the image's markers {:?} (an explicit grant would stand in for them)",
                self.unmatched_markers
            ));
        }
        if !self.readable_by_role {
            gaps.push("no read schema of the actor's roles admits the image".to_owned());
        }
        gaps
    }

    fn verdict(&self, action: Action, granted: bool) -> Vec<String> {
        let needed = needed_role(action);
        let role = match self.membership {
            Some(role) => format!("{role} of {}", self.org),
            None => format!("not a member of {}", self.org),
        };
        let mut reasons = Vec::new();
        if granted {
            if action == Action::Pull && self.public {
                reasons.push("the image is public".to_owned());
            }
            if self.visible() && self.membership >= Some(needed) {
                reasons.push(format!(
                    "the image is visible (markers matched, a role's read schema admits it) and the actor is {role}"
                ));
            }
            if self.in_session_scope
                && self.readable_by_role
                && self.granted.iter().any(|g| g == action.as_str())
            {
                reasons.push(format!("an explicit grant gives {action}"));
            }
            if self.image_created {
                reasons.push("this push created the image".to_owned());
            }
            return reasons;
        }
        if self.over_quota && matches!(action, Action::Push | Action::All) {
            reasons.push(format!(
                "{} is over its storage quota: push is refused until its usage is back under it",
                self.org
            ));
        }
        if self.retired {
            reasons.push(format!(
                "the image {} was deactivated; a push does not recreate it",
                self.repository
            ));
        } else if !self.image_exists {
            reasons.push(format!("no image is named {}", self.repository));
            if action == Action::Push {
                reasons.push(format!(
                    "a first push creates it only for developers or higher of {} who could see it",
                    self.org
                ));
            }
        }
        if action == Action::Pull && !self.public {
            reasons.push("the image is not public".to_owned());
        }
        reasons.extend(self.visibility_gaps());
        if self.membership < Some(needed) {
            reasons.push(format!(
                "{action} needs {needed} or higher of {}; the actor is {role}",
                self.org
            ));
        }
        if action != Action::All {
            reasons.push(format!("no explicit grant gives {action}"));
        }
        reasons
    }
}

impl Explanation {
    /// Per action of `scope`: granted or denied (exactly as the token would carry it), and why.
    pub fn verdicts(&self, scope: &Scope) -> Vec<ActionVerdict> {
        let allowed = match &self.subject {
            Subject::Admin => ActionSet::of(&[Action::All]),
            Subject::Repository(assessment) => assessment.allowed,
            Subject::Catalog { allowed: true, .. } => ActionSet::of(&[Action::All]),
            Subject::Catalog { allowed: false, .. } | Subject::NoNamespace | Subject::Unknown => {
                ActionSet::EMPTY
            }
        };
        let granted = scope.grant(allowed);
        scope
            .actions
            .iter()
            .map(|action| {
                let is_granted = granted.contains(action) || granted.contains(Action::All);
                let reasons = match &self.subject {
                    Subject::Admin => vec![format!(
                        "{} may do anything its session's scope admits",
                        self.actor
                    )],
                    Subject::Repository(assessment) => assessment.verdict(action, is_granted),
                    Subject::NoNamespace => vec![format!(
                        "`{}` has no namespace: the card store grants and creates only <org>/<name> repositories",
                        scope.name
                    )],
                    Subject::Catalog { allowed: true, .. } => {
                        vec!["a role of the actor grants the catalog".to_owned()]
                    }
                    Subject::Catalog {
                        allowed: false,
                        by_role,
                        scope_admits_everything,
                    } => {
                        let mut reasons = Vec::new();
                        if !by_role {
                            reasons.push(
                                "the catalog needs user-admin or a role with data.catalog"
                                    .to_owned(),
                            );
                        }
                        if !scope_admits_everything {
                            reasons.push(
                                "the catalog lists every repository: a session whose scope does not admit every card never gets it"
                                    .to_owned(),
                            );
                        }
                        reasons
                    }
                    Subject::Unknown => {
                        vec![format!(
                            "the card store has no rules for `{}` scopes",
                            scope.resource_type
                        )]
                    }
                };
                ActionVerdict {
                    action: action.as_str(),
                    granted: is_granted,
                    reasons,
                }
            })
            .collect()
    }
}
