//! TAP output: one `ok N - …` or `not ok N - …` line per check, details as `#` lines.

#[derive(Default)]
pub struct Tally {
    pub passed: u32,
    pub failed: u32,
}

impl Tally {
    fn n(&self) -> u32 {
        self.passed + self.failed + 1
    }

    pub fn ok(&mut self, what: &str) {
        println!("ok {} - {what}", self.n());
        self.passed += 1;
    }

    pub fn not_ok(&mut self, what: &str, detail: &str) {
        println!("not ok {} - {what}", self.n());
        for l in detail.lines() {
            println!("#   {l}");
        }
        self.failed += 1;
    }

    /// Records a check from its outcome; returns whether it passed.
    pub fn check(&mut self, what: &str, r: Result<(), String>) -> bool {
        match r {
            Ok(()) => {
                self.ok(what);
                true
            }
            Err(e) => {
                self.not_ok(what, &e);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let mut t = Tally::default();
        assert!(t.check("a", Ok(())));
        assert!(!t.check("b", Err("why".into())));
        t.ok("c");
        assert_eq!((t.passed, t.failed), (2, 1));
    }
}
