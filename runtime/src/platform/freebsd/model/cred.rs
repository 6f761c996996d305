//! Group credentials in the model, as FreeBSD 14 keeps them: the effective gid is
//! `cr_groups[0]` (sys/sys/ucred.h `#define cr_gid cr_groups[0]`).

/// A process's groups: `groups[0]` is the effective gid, the rest the supplementary ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cred {
    pub groups: Vec<u32>,
}

impl Cred {
    /// setgroups(2): the list is copied into cr_groups from index 0 (kern_prot.c
    /// crsetgroups).
    pub fn setgroups(&mut self, list: &[u32]) {
        self.groups = list.to_vec();
    }

    /// setgid(2): change_egid writes cr_groups[0] (kern_prot.c).
    pub fn setgid(&mut self, gid: u32) {
        match self.groups.first_mut() {
            Some(g) => *g = gid,
            None => self.groups.push(gid),
        }
    }

    /// Every group the process is a member of (groupmember() looks at all of cr_groups).
    pub fn member_of(&self, gid: u32) -> bool {
        self.groups.contains(&gid)
    }
}
