//! The cgroup v2 device filter: a [`Policy`] compiled to a `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program (instructions built with `rbpf`'s builder). The kernel runs it on every open or
//! mknod of a device node by a process in the cgroup, with a `struct bpf_cgroup_dev_ctx`
//! (`access_type` = access << 16 | type, `major`, `minor`, each a u32) in r1; 1 allows.
//!
//! Each access bit the request carries (read, write, mknod) is decided on its own, by the
//! last rule that matches the node and names that bit, else the policy's default — the
//! same decision as [`Policy::allows`], which the tests run the program against.

use rbpf::insn_builder::{Arch, BpfCode, Cond, Instruction, IntoBytes, MemSize, Source};

use super::devices::{Policy, MKNOD, READ, WRITE};

/// Registers: r2 type, r3 access, r4 major, r5 minor (r1 is the context, r0 the verdict).
const TYPE: u8 = 2;
const ACCESS: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;

/// One instruction with jump targets still symbolic.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// r_dst = *(u32 *)(r1 + off)
    LoadCtx {
        dst: u8,
        off: i16,
    },
    Mov {
        dst: u8,
        src: u8,
    },
    AndImm {
        dst: u8,
        imm: i32,
    },
    RshImm {
        dst: u8,
        imm: i32,
    },
    /// Jump to `label` when r_dst != imm.
    JumpNe {
        dst: u8,
        imm: i32,
        label: usize,
    },
    /// Jump to `label` when r_dst & imm != 0.
    JumpSet {
        dst: u8,
        imm: i32,
        label: usize,
    },
    Jump {
        label: usize,
    },
    Verdict(i32),
    Label(usize),
}

struct Asm {
    ops: Vec<Op>,
    labels: usize,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }

    fn emit(&self) -> Vec<u8> {
        let mut at = vec![0i64; self.labels];
        let mut pc = 0i64;
        for op in &self.ops {
            match op {
                Op::Label(l) => at[*l] = pc,
                // A verdict is a mov and an exit.
                Op::Verdict(_) => pc += 2,
                _ => pc += 1,
            }
        }
        let mut code = BpfCode::new();
        let mut pc = 0i64;
        // Jump offsets count from the next instruction; programs stay far below i16.
        let off = |pc: i64, l: usize| (at[l] - pc - 1) as i16;
        for op in &self.ops {
            match *op {
                Op::Label(_) => continue,
                Op::LoadCtx { dst, off } => {
                    code.load_x(MemSize::Word)
                        .set_dst(dst)
                        .set_src(1)
                        .set_off(off)
                        .push();
                }
                Op::Mov { dst, src } => {
                    code.mov(Source::Reg, Arch::X64)
                        .set_dst(dst)
                        .set_src(src)
                        .push();
                }
                Op::AndImm { dst, imm } => {
                    code.bit_and(Source::Imm, Arch::X32)
                        .set_dst(dst)
                        .set_imm(imm)
                        .push();
                }
                Op::RshImm { dst, imm } => {
                    code.right_shift(Source::Imm, Arch::X32)
                        .set_dst(dst)
                        .set_imm(imm)
                        .push();
                }
                Op::JumpNe { dst, imm, label } => {
                    code.jump_conditional(Cond::NotEquals, Source::Imm)
                        .set_dst(dst)
                        .set_imm(imm)
                        .set_off(off(pc, label))
                        .push();
                }
                Op::JumpSet { dst, imm, label } => {
                    code.jump_conditional(Cond::BitAnd, Source::Imm)
                        .set_dst(dst)
                        .set_imm(imm)
                        .set_off(off(pc, label))
                        .push();
                }
                Op::Jump { label } => {
                    code.jump_unconditional().set_off(off(pc, label)).push();
                }
                Op::Verdict(v) => {
                    code.mov(Source::Imm, Arch::X32)
                        .set_dst(0)
                        .set_imm(v)
                        .push();
                    code.exit().push();
                    pc += 1;
                }
            }
            pc += 1;
        }
        code.into_bytes().to_vec()
    }
}

/// The program for `policy`, as the bytes `BPF_PROG_LOAD` takes (8 per instruction).
pub fn program(policy: &Policy) -> Vec<u8> {
    let mut a = Asm {
        ops: Vec::new(),
        labels: 0,
    };
    let deny = a.label();
    let mut denies = false;
    a.ops.extend([
        Op::LoadCtx { dst: TYPE, off: 0 },
        Op::Mov {
            dst: ACCESS,
            src: TYPE,
        },
        Op::AndImm {
            dst: TYPE,
            imm: 0xFFFF,
        },
        Op::RshImm {
            dst: ACCESS,
            imm: 16,
        },
        Op::LoadCtx { dst: MAJOR, off: 4 },
        Op::LoadCtx { dst: MINOR, off: 8 },
    ]);
    for bit in [READ, WRITE, MKNOD] {
        let decide = a.label();
        let done = a.label();
        // Bits the request does not carry are not decided.
        a.ops.push(Op::JumpSet {
            dst: ACCESS,
            imm: i32::from(bit),
            label: decide,
        });
        a.ops.push(Op::Jump { label: done });
        a.ops.push(Op::Label(decide));
        // The kernel refuses unreachable instructions: a rule that matches every node ends
        // the section (rules before it in the list can never decide this bit).
        let mut decided = false;
        for r in policy.rules.iter().rev().filter(|r| r.access & bit != 0) {
            let next = a.label();
            let checks = [
                (TYPE, r.kind.bpf_type()),
                (MAJOR, r.major.map(|m| m as i32)),
                (MINOR, r.minor.map(|m| m as i32)),
            ];
            let mut conditional = false;
            for (dst, want) in checks {
                if let Some(imm) = want {
                    conditional = true;
                    a.ops.push(Op::JumpNe {
                        dst,
                        imm,
                        label: next,
                    });
                }
            }
            if r.allow {
                a.ops.push(Op::Jump { label: done });
            } else {
                denies = true;
                a.ops.push(Op::Jump { label: deny });
            }
            if !conditional {
                decided = true;
                break;
            }
            a.ops.push(Op::Label(next));
        }
        if !decided && !policy.default_allow {
            denies = true;
            a.ops.push(Op::Jump { label: deny });
        }
        a.ops.push(Op::Label(done));
    }
    a.ops.push(Op::Verdict(1));
    if denies {
        a.ops.push(Op::Label(deny));
        a.ops.push(Op::Verdict(0));
    }
    a.emit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::linux::devices::{rules, Kind, Rule};

    /// Runs `prog` in rbpf's interpreter on a `bpf_cgroup_dev_ctx`.
    fn run(prog: &[u8], kind: Kind, major: u32, minor: u32, access: u8) -> bool {
        let vm = rbpf::EbpfVmRaw::new(Some(prog)).expect("the program verifies");
        let mut ctx = Vec::with_capacity(12);
        let t = kind.bpf_type().unwrap() as u32;
        ctx.extend_from_slice(&((u32::from(access) << 16) | t).to_le_bytes());
        ctx.extend_from_slice(&major.to_le_bytes());
        ctx.extend_from_slice(&minor.to_le_bytes());
        match vm.execute_program(&mut ctx).expect("the program runs") {
            0 => false,
            1 => true,
            v => panic!("verdict {v}"),
        }
    }

    /// Every instruction is reachable, as the kernel's verifier demands (rbpf does not
    /// check it).
    fn all_reachable(prog: &[u8]) {
        let n = prog.len() / 8;
        let mut seen = vec![false; n];
        let mut todo = vec![0usize];
        while let Some(pc) = todo.pop() {
            if pc >= n || seen[pc] {
                continue;
            }
            seen[pc] = true;
            let op = prog[pc * 8];
            let off = i16::from_le_bytes([prog[pc * 8 + 2], prog[pc * 8 + 3]]) as isize;
            let target = (pc as isize + 1 + off) as usize;
            match op {
                0x95 => {}                                              // exit
                0x05 => todo.push(target),                              // ja
                o if o & 0x07 == 0x05 => todo.extend([pc + 1, target]), // conditional jump
                _ => todo.push(pc + 1),
            }
        }
        let dead: Vec<usize> = (0..n).filter(|i| !seen[*i]).collect();
        assert!(dead.is_empty(), "unreachable instructions {dead:?}");
    }

    fn policy(json: &str) -> Policy {
        let list: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
        Policy::new(&rules(&list).unwrap())
    }

    /// The program decides as the policy does, for every access and a spread of nodes.
    fn agrees(p: &Policy) {
        let prog = program(p);
        all_reachable(&prog);
        for kind in [Kind::Char, Kind::Block] {
            for (major, minor) in [
                (1, 3),
                (1, 11),
                (8, 0),
                (8, 1),
                (10, 200),
                (136, 4),
                (5, 2),
                (4, 7),
            ] {
                for access in 1..=7u8 {
                    assert_eq!(
                        run(&prog, kind, major, minor, access),
                        p.allows(kind, major, minor, access),
                        "{kind:?} {major}:{minor} access {access} under {p:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_program_decides_as_the_policy() {
        for json in [
            "[]",
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"b","major":8,"minor":1,"access":"r"}]"#,
            r#"[{"allow":true,"access":"rwm"},{"allow":false,"type":"c","major":1,"minor":11,"access":"w"},
                {"allow":false,"type":"b","access":"rw"},{"allow":true,"type":"b","major":8,"access":"r"}]"#,
            r#"[{"allow":true,"access":"rwm"},{"allow":false,"access":"rwm"},{"allow":true,"major":4,"access":"rw"}]"#,
        ] {
            agrees(&policy(json));
        }
    }

    #[test]
    fn the_kmsg_and_disk_nodes_are_denied_under_the_usual_config() {
        let prog = program(&policy(r#"[{"allow":false,"access":"rwm"}]"#));
        assert!(!run(&prog, Kind::Char, 1, 11, READ), "/dev/kmsg");
        assert!(!run(&prog, Kind::Block, 8, 0, READ | WRITE), "a disk");
        assert!(
            run(&prog, Kind::Char, 1, 11, MKNOD),
            "mknod itself is allowed, as runc"
        );
        assert!(run(&prog, Kind::Char, 1, 3, READ | WRITE), "/dev/null");
    }

    #[test]
    fn allow_all_is_a_program_that_allows_everything() {
        let p = Policy::new(&[Rule {
            allow: true,
            kind: Kind::All,
            major: None,
            minor: None,
            access: READ | WRITE | MKNOD,
        }]);
        let prog = program(&p);
        all_reachable(&prog);
        assert!(run(&prog, Kind::Block, 8, 0, READ | WRITE | MKNOD));
        agrees(&policy(r#"[{"allow":true,"access":"rwm"}]"#));
        agrees(&policy(
            r#"[{"allow":false,"access":"rwm"},{"allow":false,"access":"m"}]"#,
        ));
    }
}
