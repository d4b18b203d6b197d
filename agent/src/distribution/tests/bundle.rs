//! The bundle format: canonical encoding, signatures, tampering, shape, keys, floor.
use std::path::Path;

use super::{key, signed, TempDir};
use crate::distribution::{
    Bundle, BundleFile, DistributionError, Floor, FloorFile, SecretKey, TrustedKey,
};

fn trusted(seed: u8) -> Vec<TrustedKey> {
    vec![key(seed).public()]
}

#[test]
fn the_canonical_encoding_is_length_prefixed_and_ordered() {
    let b = Bundle {
        format: crate::distribution::FORMAT.into(),
        version: 258,
        key_id: "k1".into(),
        files: vec![BundleFile {
            name: "a.toml".into(),
            content: "x=1".into(),
        }],
        signature: String::new(),
    };
    let mut want = b"ward-policy-bundle/1\n".to_vec();
    want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 2]); // version 258
    want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2]);
    want.extend_from_slice(b"k1");
    want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]); // one file
    want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 6]);
    want.extend_from_slice(b"a.toml");
    want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 3]);
    want.extend_from_slice(b"x=1");
    assert_eq!(b.signed_bytes(), want);
    // Moving a byte from a name to a content changes the encoding.
    let shifted = Bundle {
        files: vec![BundleFile {
            name: "a.tom".into(),
            content: "lx=1".into(),
        }],
        ..b.clone()
    };
    assert_ne!(shifted.signed_bytes(), b.signed_bytes());
}

#[test]
fn signing_is_deterministic_and_sorts_the_files() {
    let (a, b) = (signed(3, 443, 1), signed(3, 443, 1));
    assert_eq!(a.to_json(), b.to_json(), "same inputs, same bundle");
    let names: Vec<&str> = a.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["00-zones.toml", "10-rules.toml"]);
    let parsed = Bundle::parse(Path::new("p.bundle"), a.to_json().as_bytes()).expect("parse");
    assert_eq!(parsed, a);
    let info = parsed.verify(&trusted(1)).expect("verifies");
    assert_eq!(info.version, 3);
    assert_eq!(info.key_id, key(1).id());
    assert_eq!(info.digest, a.digest());
    assert_eq!(info.files, names);
    assert_ne!(signed(3, 444, 1).digest(), a.digest());
}

#[test]
fn any_change_after_signing_is_refused() {
    let good = signed(5, 443, 1);
    let keys = trusted(1);
    let mut changes: Vec<(&str, Bundle)> = Vec::new();
    let mut b = good.clone();
    b.files[1].content = b.files[1].content.replace("443", "444");
    changes.push(("a byte of a file", b));
    let mut b = good.clone();
    b.files[1].name = "11-rules.toml".into();
    changes.push(("a file name", b));
    let mut b = good.clone();
    b.version = 6;
    changes.push(("the version", b));
    let mut b = good.clone();
    b.files.push(BundleFile {
        name: "20-more.toml".into(),
        content: String::new(),
    });
    changes.push(("a file added", b));
    let mut b = good.clone();
    b.files.pop();
    changes.push(("a file removed", b));
    for (what, bundle) in changes {
        let err = bundle.verify(&keys).expect_err(what);
        assert!(
            matches!(err, DistributionError::BadSignature(_)),
            "{what}: {err}"
        );
    }
    let mut b = good.clone();
    b.key_id = key(2).id();
    let err = b.verify(&[key(1).public(), key(2).public()]).unwrap_err();
    assert!(matches!(err, DistributionError::BadSignature(_)), "{err}");
    let mut b = good.clone();
    b.signature = "not base64!".into();
    assert!(matches!(
        b.verify(&keys).unwrap_err(),
        DistributionError::BadSignature(_)
    ));
    assert!(good.verify(&keys).is_ok());
}

#[test]
fn unknown_keys_and_no_keys_are_refused() {
    let b = signed(1, 443, 1);
    let err = b.verify(&trusted(2)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "signed by key {}, which is not in trusted_keys",
            key(1).id()
        )
    );
    assert!(matches!(
        b.verify(&[]).unwrap_err(),
        DistributionError::NoTrustedKeys
    ));
}

#[test]
fn malformed_bundles_are_refused_with_their_place() {
    let json = signed(1, 443, 1).to_json();
    let path = Path::new("x.bundle");
    let extra = json.replacen("\"version\"", "\"comment\": \"hi\",\n  \"version\"", 1);
    let err = Bundle::parse(path, extra.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("x.bundle:3:"), "{err}");
    assert!(err.contains("unknown field `comment`"), "{err}");

    let swapped = json
        .replace("00-zones.toml", "tmp")
        .replace("10-rules.toml", "00-zones.toml")
        .replace("tmp", "10-rules.toml");
    let err = Bundle::parse(path, swapped.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("names must be unique and in increasing order"),
        "{err}"
    );
    for bad in ["../x.toml", "a b.toml", ".toml", "x.txt"] {
        let text = json.replace("10-rules.toml", bad);
        let err = Bundle::parse(path, text.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a plain `*.toml` name"), "{bad}: {err}");
    }
    let other = json.replace("ward-policy-bundle/1", "ward-policy-bundle/2");
    let err = Bundle::parse(path, other.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not `ward-policy-bundle/1`"), "{err}");
    let err = Bundle::sign(1, Vec::new(), &key(1))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "the bundle has no policy file");
}

#[test]
fn keys_round_trip_and_bad_keys_are_named() {
    let dir = TempDir::new("keys");
    let prefix = dir.path().join("team");
    let k = SecretKey::generate();
    let (secret, public) = k.write(&prefix).expect("write");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&secret).expect("meta").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let again = SecretKey::read(&secret).expect("read");
    assert_eq!(again.id(), k.id());
    let pubkey = TrustedKey::from_arg(public.to_str().unwrap()).expect("pub file");
    assert_eq!(pubkey, k.public());
    assert_eq!(TrustedKey::parse(&k.public().to_base64()).unwrap(), pubkey);
    assert!(k.write(&prefix).is_err(), "never overwrites a key");

    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let err = SecretKey::read(&secret).unwrap_err().to_string();
    assert!(err.contains("readable by its owner only"), "{err}");

    let err = TrustedKey::parse("AAAA").unwrap_err().to_string();
    assert_eq!(err, "`AAAA` is not an Ed25519 public key: 3 bytes, not 32");
    assert!(TrustedKey::parse("%%").is_err());
    let small_order = {
        use base64::Engine as _;
        let mut b = [0u8; 32];
        b[0] = 1; // the identity point
        base64::engine::general_purpose::STANDARD.encode(b)
    };
    assert!(TrustedKey::parse(&small_order).is_err());
}

#[test]
fn the_floor_admits_newer_versions_and_the_same_bundle_only() {
    let applied = signed(5, 443, 1).verify(&trusted(1)).unwrap();
    let floor = Floor::of(&applied);
    let info = |version, port| signed(version, port, 1).verify(&trusted(1)).unwrap();
    assert!(floor.admits(&applied).is_ok(), "the same bundle again");
    assert!(floor.admits(&info(6, 443)).is_ok(), "a newer version");
    assert!(floor.admits(&info(6, 8443)).is_ok(), "a newer policy");
    let err = floor.admits(&info(4, 443)).unwrap_err().to_string();
    assert_eq!(
        err,
        "version 4 is older than version 5 already applied on this host (anti-rollback)"
    );
    let err = floor.admits(&info(5, 8443)).unwrap_err();
    assert!(
        matches!(err, DistributionError::Replay { version: 5 }),
        "{err}"
    );
}

#[test]
fn the_floor_file_is_kept_atomically_and_never_guessed() {
    let dir = TempDir::new("floor");
    let state = dir.path().join("state");
    let file = FloorFile::open(&state).expect("open");
    assert_eq!(file.load().unwrap(), None, "nothing applied yet");
    let floor = Floor::of(&signed(9, 443, 1).verify(&trusted(1)).unwrap());
    file.store(&floor).expect("store");
    assert_eq!(
        FloorFile::open(&state).unwrap().load().unwrap(),
        Some(floor)
    );
    let names: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [crate::distribution::FLOOR_FILE],
        "no temporary file left"
    );
    std::fs::write(
        state.join(crate::distribution::FLOOR_FILE),
        "{\"version\": 3",
    )
    .unwrap();
    let err = file.load().unwrap_err().to_string();
    assert!(err.contains("the anti-rollback floor is unknown"), "{err}");
}
