mod support;
use support::frames::{FrameSpec, L4};
use ward::{dataplane::Dataplane, policy::{CompiledPolicy, RuleEntry}};

#[test]
fn smoke() {
    let dir = format!("/sys/fs/bpf/ward-smoke-{}", std::process::id());
    let mut dp = Dataplane::load(std::path::Path::new(&dir)).unwrap();
    let p = CompiledPolicy {
        v4: vec![("198.18.20.0/24".parse().unwrap(), 1), ("198.18.21.0/24".parse().unwrap(), 2)],
        v6: vec![],
        rules: vec![RuleEntry { src_zone: 1, dst_zone: 2, proto: 6, port: 104, port_bits: 16, rule_id: 0 }],
    };
    let g = dp.apply(&p).unwrap();
    eprintln!("gen {g}");
    let syn = FrameSpec::new("198.18.20.10", "198.18.21.10", L4::Tcp(40000, 104));
    eprintln!("allowed: {:?}", dp.test_run_xdp(&syn.build(), 1).unwrap());
    eprintln!("reply: {:?}", dp.test_run_xdp(&syn.reply().build(), 1).unwrap());
    let bad = FrameSpec::new("198.18.21.10", "198.18.20.10", L4::Tcp(40001, 104));
    eprintln!("reverse: {:?}", dp.test_run_xdp(&bad.build(), 1).unwrap());
    eprintln!("tc: {:?}", dp.test_run_tc(&syn.build()).unwrap());
    std::fs::remove_dir_all(&dir).ok();
}
