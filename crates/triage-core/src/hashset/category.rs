//! Category schemes: what a set's category codes mean, and which is most severe.
//!
//! A code means nothing without its scheme: Project VIC's current (US)
//! scheme and its legacy one swap 0 and 5, and UK CAID uses letters. So every
//! set records its scheme, every hit carries `(scheme, code, label)`, and the
//! severity order used to summarise a file is a table per scheme.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A named category scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// Project VIC (current, US profile): 0 non-pertinent, 1 CAM,
    /// 2 exploitive/age difficult, 3 CGI/animation, 4 comparison.
    Projectvic,
    /// The older DHS/Project VIC scheme: 0 uncategorised, 1 child
    /// exploitation (illegal), 2 non-illegal/age difficult, 3 CGI/animation,
    /// 4 exemplar/comparison, 5 non-pertinent.
    ProjectvicLegacy,
    /// UK CAID (Sentencing Council): A, B, C; stored as codes 1, 2, 3.
    CaidUk,
}

impl Scheme {
    /// All schemes.
    pub const ALL: [Scheme; 3] = [Scheme::Projectvic, Scheme::ProjectvicLegacy, Scheme::CaidUk];

    /// The name on the command line and in records.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Projectvic => "projectvic",
            Scheme::ProjectvicLegacy => "projectvic-legacy",
            Scheme::CaidUk => "caid-uk",
        }
    }

    /// Parses [`Scheme::name`].
    pub fn parse(s: &str) -> Option<Scheme> {
        Scheme::ALL.into_iter().find(|x| x.name() == s)
    }

    /// The label of `code`, or `None` when the scheme has no such code.
    pub fn label(self, code: u16) -> Option<&'static str> {
        let labels: &[&str] = match self {
            Scheme::Projectvic => &[
                "non-pertinent",
                "child abuse material (CAM)",
                "child exploitive (non-CAM) / age difficult",
                "CGI / animation",
                "comparison",
            ],
            Scheme::ProjectvicLegacy => &[
                "uncategorised",
                "child exploitation (illegal)",
                "child exploitive (non-illegal) / age difficult",
                "CGI / animation",
                "exemplar / comparison",
                "non-pertinent",
            ],
            Scheme::CaidUk => &["", "category A", "category B", "category C"],
        };
        labels.get(code as usize).filter(|l| !l.is_empty()).copied()
    }

    /// The code as written: a number, or the letter for CAID.
    pub fn code_text(self, code: u16) -> String {
        match (self, code) {
            (Scheme::CaidUk, 1..=3) => ((b'A' + code as u8 - 1) as char).to_string(),
            _ => code.to_string(),
        }
    }

    /// Parses a code as written in a list or on the command line
    /// (`1`; `A`/`B`/`C` for CAID). `None` when the scheme has no such code.
    pub fn parse_code(self, s: &str) -> Option<u16> {
        let s = s.trim();
        let code = match self {
            Scheme::CaidUk => match s.to_ascii_uppercase().as_str() {
                "A" => 1,
                "B" => 2,
                "C" => 3,
                _ => return None,
            },
            _ => s.parse().ok()?,
        };
        self.label(code).map(|_| code)
    }

    /// Severity rank: higher is more serious. Used only to pick the most
    /// serious category of a file for summaries; every hit is still reported.
    pub fn severity(self, code: u16) -> u8 {
        match (self, code) {
            (Scheme::Projectvic, 1) | (Scheme::ProjectvicLegacy, 1) | (Scheme::CaidUk, 1) => 9,
            (Scheme::Projectvic, 2) | (Scheme::ProjectvicLegacy, 2) | (Scheme::CaidUk, 2) => 8,
            (Scheme::Projectvic, 3) | (Scheme::ProjectvicLegacy, 3) | (Scheme::CaidUk, 3) => 7,
            (Scheme::Projectvic, 4) | (Scheme::ProjectvicLegacy, 4) => 6,
            (Scheme::ProjectvicLegacy, 0) => 5,
            _ => 1,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A category: a code in a scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Category {
    /// The scheme the code belongs to.
    pub scheme: Scheme,
    /// The code (CAID letters as 1–3).
    pub code: u16,
}

impl Category {
    /// The scheme's label for the code.
    pub fn label(&self) -> &'static str {
        self.scheme.label(self.code).unwrap_or("unknown code")
    }
}

impl fmt::Display for Category {
    /// `projectvic 1 (child abuse material (CAM))`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({})",
            self.scheme,
            self.scheme.code_text(self.code),
            self.label()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_labels() {
        assert_eq!(Scheme::Projectvic.parse_code("1"), Some(1));
        assert_eq!(Scheme::Projectvic.parse_code("5"), None);
        assert_eq!(Scheme::ProjectvicLegacy.parse_code("5"), Some(5));
        assert_eq!(Scheme::CaidUk.parse_code("b"), Some(2));
        assert_eq!(Scheme::CaidUk.parse_code("1"), None);
        assert_eq!(Scheme::CaidUk.code_text(3), "C");
        // The legacy scheme's 0 and 5 are the current scheme's 5 and 0.
        assert_eq!(Scheme::Projectvic.label(0), Some("non-pertinent"));
        assert_eq!(Scheme::ProjectvicLegacy.label(5), Some("non-pertinent"));
        let c = Category {
            scheme: Scheme::CaidUk,
            code: 1,
        };
        assert_eq!(c.to_string(), "caid-uk A (category A)");
    }

    #[test]
    fn severity_orders_cam_first_and_non_pertinent_last() {
        let s = Scheme::Projectvic;
        let mut codes = [0, 4, 2, 1, 3];
        codes.sort_by_key(|c| std::cmp::Reverse(s.severity(*c)));
        assert_eq!(codes, [1, 2, 3, 4, 0]);
        let l = Scheme::ProjectvicLegacy;
        assert!(l.severity(0) > l.severity(5));
    }
}
