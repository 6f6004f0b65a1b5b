// Proves verified visitors: identity tokens (RS256/ES256 JWTs) at hello and identify, every refusal, one end user per subject, expiry and grace, config errors, and that no token is ever stored.
mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const ISSUER: &str = "https://idp.example.test";
const AUDIENCE: &str = "embedded-messaging-test";

fn key_file(name: &str) -> String {
    format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A verified deployment whose `[deployment.auth]` has `keys` (TOML lines), a one-second grace
/// and no leeway, plus agent `ada`.
fn verified_config(keys: &str) -> String {
    format!(
        r#"
[[deployment]]
org_id = "{ORG}"
name = "{DEPLOYMENT}"
allowed_origins = ["http://127.0.0.1:*"]
queue = "support"
[deployment.auth]
mode = "verified"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
{keys}
grace_seconds = 1
leeway_seconds = 0
[[queue]]
name = "support"
[[agent]]
username = "ada"
display_name = "Ada"
password_hash = "{PW_HASH}"
capacity = 3
queues = ["support"]
"#
    )
}

fn pem_config() -> String {
    verified_config(&format!(
        "public_keys = [{:?}, {:?}]",
        key_file("rsa-public.pem"),
        key_file("ec-public.pem")
    ))
}

fn jwks_config() -> String {
    verified_config(&format!("jwks_file = {:?}", key_file("jwks.json")))
}

/// Claims valid for the test deployment for ten minutes.
fn claims(sub: &str) -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "exp": now_secs() + 600})
}

/// A token signed with a fixture private key (`rsa-private.pem`, `ec-private.pem`, ...).
fn sign(alg: Algorithm, private_key: &str, kid: Option<&str>, claims: &Value) -> String {
    let pem = std::fs::read(key_file(private_key)).unwrap();
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem).unwrap(),
        _ => EncodingKey::from_rsa_pem(&pem).unwrap(),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn rs256(sub: &str) -> String {
    sign(Algorithm::RS256, "rsa-private.pem", None, &claims(sub))
}

/// A token built by hand: any header, any claims, any signature.
fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

/// The classic key-confusion forgery: HS256 with the RSA public key's PEM as the HMAC secret.
fn hs256_with_public_key(sub: &str) -> String {
    let secret = std::fs::read(key_file("rsa-public.pem")).unwrap();
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(sub),
        &EncodingKey::from_secret(&secret),
    )
    .unwrap()
}

async fn hello_with_token(v: &mut Ws, token: &str) -> Value {
    v.send(json!({"type": "hello", "protocolVersion": 1, "identityToken": token}))
        .await;
    v.recv().await
}

async fn assert_open(v: &mut Ws) {
    v.send(json!({"type": "ping"})).await;
    assert_eq!(v.recv().await, json!({"type": "pong"}));
}

#[tokio::test]
// RS256 and ES256 tokens are accepted from PEM keys and from a JWKS (by kid); welcome has no credential.
async fn rs256_es256_and_jwks_tokens_are_accepted() {
    let s = Server::start(&pem_config()).await;
    let config = s
        .get(
            &format!(
                "/embeddedservice/v1/embedded-service-config?orgId={ORG}&esConfigName={DEPLOYMENT}"
            ),
            None,
        )
        .await;
    assert_eq!(config.json()["auth"], "verified");
    let mut v = s.visitor().await;
    let w = hello_with_token(&mut v, &rs256("alice")).await;
    assert_eq!(w["type"], "welcome", "{w}");
    assert_eq!(w["credential"], "");
    assert!(w.get("conversationId").is_none(), "a new end user: {w}");
    let mut v = s.visitor().await;
    let es = sign(Algorithm::ES256, "ec-private.pem", None, &claims("bob"));
    assert_eq!(hello_with_token(&mut v, &es).await["type"], "welcome");

    let s = Server::start(&jwks_config()).await;
    for (alg, private_key, kid) in [
        (Algorithm::RS256, "rsa-private.pem", "test-rsa"),
        (Algorithm::ES256, "ec-private.pem", "test-ec"),
    ] {
        let mut v = s.visitor().await;
        let token = sign(alg, private_key, Some(kid), &claims("carol"));
        let w = hello_with_token(&mut v, &token).await;
        assert_eq!(w["type"], "welcome", "{kid}: {w}");
    }
}

#[tokio::test]
// Every bad token gets identity_invalid saying which check failed (never echoing the token); no token or a bare credential gets identity_required; the socket stays open throughout.
async fn every_refusal_is_precise_and_keeps_the_socket_open() {
    let s = Server::start(&jwks_config()).await;
    let now = now_secs();
    let with = |patch: Value| {
        let mut c = claims("alice");
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        sign(Algorithm::RS256, "rsa-private.pem", Some("test-rsa"), &c)
    };
    let cases = [
        (
            "alg none",
            raw_token(&json!({"alg": "none", "typ": "JWT"}), &claims("alice"), b""),
            "alg \"none\" is not accepted",
        ),
        (
            "HS256 with the public key as secret",
            hs256_with_public_key("alice"),
            "alg \"HS256\" is not accepted",
        ),
        (
            "wrong signing key",
            sign(
                Algorithm::RS256,
                "other-rsa-private.pem",
                None,
                &claims("alice"),
            ),
            "signature does not match",
        ),
        (
            "wrong key for the kid",
            sign(
                Algorithm::RS256,
                "other-rsa-private.pem",
                Some("test-rsa"),
                &claims("alice"),
            ),
            "signature does not match",
        ),
        (
            "unknown kid",
            sign(
                Algorithm::RS256,
                "rsa-private.pem",
                Some("nope"),
                &claims("alice"),
            ),
            "unknown kid \"nope\"",
        ),
        ("expired", with(json!({"exp": now - 60})), "expired"),
        (
            "wrong iss",
            with(json!({"iss": "https://evil.test"})),
            "iss is not",
        ),
        ("wrong aud", with(json!({"aud": "someone-else"})), "aud"),
        (
            "missing sub",
            with(json!({"sub": null})),
            "sub claim is missing",
        ),
        ("empty sub", with(json!({"sub": " "})), "sub claim is empty"),
        (
            "missing exp",
            with(json!({"exp": null})),
            "exp claim is missing",
        ),
        ("malformed", "not-a-jwt".to_string(), "malformed"),
        ("garbage header", "e30K!!.e30.c2ln".to_string(), "malformed"),
    ];
    let mut v = s.visitor().await;
    for (case, token, says) in &cases {
        let e = hello_with_token(&mut v, token).await;
        assert_eq!(e["code"], "identity_invalid", "{case}: {e}");
        let message = e["message"].as_str().unwrap();
        assert!(message.contains(says), "{case}: {message}");
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            signature.len() < 4 || !message.contains(signature),
            "{case}: the message echoes the token"
        );
    }
    v.send(json!({"type": "hello", "protocolVersion": 1})).await;
    assert_eq!(v.recv().await["code"], "identity_required");
    v.send(json!({"type": "hello", "protocolVersion": 1, "credential": "s3cret"}))
        .await;
    assert_eq!(v.recv().await["code"], "identity_required");
    // After all that, the same socket still says hello with a good token.
    let good = sign(
        Algorithm::RS256,
        "rsa-private.pem",
        Some("test-rsa"),
        &claims("alice"),
    );
    assert_eq!(hello_with_token(&mut v, &good).await["type"], "welcome");
}

#[tokio::test]
// One subject is one end user: a second connection (another browser) gets the same endUserId and the open conversation; the agent sees the verified subject.
async fn same_subject_resumes_from_another_connection() {
    let s = Server::start(&pem_config()).await;
    let mut first = s.visitor().await;
    let w1 = hello_with_token(&mut first, &rs256("alice@example.com")).await;
    let id = uuid();
    first
        .send(json!({"type": "createConversation", "conversationId": id}))
        .await;
    assert_eq!(first.recv().await["created"], true);
    let entry = uuid();
    first
        .send(send_message(&id, &entry, "hi from the laptop"))
        .await;
    first.recv_until(|f| f["type"] == "ack").await;

    let mut second = s.visitor().await;
    let w2 = hello_with_token(&mut second, &rs256("alice@example.com")).await;
    assert_eq!(w2["endUserId"], w1["endUserId"]);
    assert_eq!(w2["conversationId"], id.as_str());
    let history = second.stored_history(&id).await;
    assert_eq!(history[0].identifier.to_string(), entry);

    let mut other = s.visitor().await;
    let w3 = hello_with_token(&mut other, &rs256("bob@example.com")).await;
    assert_ne!(w3["endUserId"], w1["endUserId"]);
    assert!(w3.get("conversationId").is_none(), "{w3}");

    let mut ada = s.agent_online().await;
    let assigned = ada.recv_until(|f| f["type"] == "assigned").await;
    assert_eq!(
        assigned["conversation"]["context"]["verifiedSubject"],
        "alice@example.com"
    );
}

#[tokio::test]
// Anonymous deployments ignore identityToken; a returning credential's welcome names its open conversation.
async fn anonymous_deployments_ignore_tokens_and_name_the_open_conversation() {
    let s = Server::start(&config(1)).await;
    let mut v = s.visitor().await;
    let w = hello_with_token(&mut v, "not-a-jwt").await;
    assert_eq!(w["type"], "welcome", "{w}");
    let credential = w["credential"].as_str().unwrap().to_string();
    let id = uuid();
    v.send(json!({"type": "createConversation", "conversationId": id}))
        .await;
    v.recv().await;
    let mut again = s.visitor().await;
    again
        .send(json!({"type": "hello", "protocolVersion": 1, "credential": credential}))
        .await;
    assert_eq!(again.recv().await["conversationId"], id.as_str());
    again
        .send(json!({"type": "identify", "identityToken": "x.y.z"}))
        .await;
    assert_eq!(again.recv().await["code"], "bad_frame");
}

#[tokio::test]
// At exp the visitor gets identityTokenExpired; a fresh token for the same sub within grace answers welcome and the session goes on past the grace period.
async fn fresh_token_within_grace_continues_the_session() {
    let s = Server::start(&pem_config()).await;
    let mut v = s.visitor().await;
    let short = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now_secs() + 2});
    let w = hello_with_token(
        &mut v,
        &sign(Algorithm::RS256, "rsa-private.pem", None, &short),
    )
    .await;
    let id = uuid();
    v.send(json!({"type": "createConversation", "conversationId": id}))
        .await;
    v.recv().await;
    assert_eq!(
        v.recv().await,
        json!({"type": "identityTokenExpired", "graceSeconds": 1})
    );
    v.send(json!({"type": "identify", "identityToken": rs256("alice")}))
        .await;
    let again = v.recv().await;
    assert_eq!(again["type"], "welcome", "{again}");
    assert_eq!(again["endUserId"], w["endUserId"]);
    assert_eq!(again["conversationId"], id.as_str());
    // Past the end of the old grace period: still open, messages still flow.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    v.send(send_message(&id, &uuid(), "still here")).await;
    assert_eq!(v.recv_until(|f| f["type"] == "ack").await["seq"], 1);
}

#[tokio::test]
// Without a fresh token by the end of grace the server sends identity_expired and closes the socket.
async fn no_fresh_token_within_grace_closes_the_socket() {
    let s = Server::start(&pem_config()).await;
    let mut v = s.visitor().await;
    let short = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now_secs() + 1});
    let token = sign(Algorithm::ES256, "ec-private.pem", None, &short);
    assert_eq!(hello_with_token(&mut v, &token).await["type"], "welcome");
    assert_eq!(v.recv().await["type"], "identityTokenExpired");
    assert_eq!(v.recv().await["code"], "identity_expired");
    assert!(v.recv().await.is_null(), "the server closed the socket");
}

#[tokio::test]
// identify with another subject's token is refused; the session keeps its subject and stays open.
async fn identify_with_another_subject_is_refused() {
    let s = Server::start(&pem_config()).await;
    let mut v = s.visitor().await;
    let w = hello_with_token(&mut v, &rs256("alice")).await;
    v.send(json!({"type": "identify", "identityToken": rs256("mallory")}))
        .await;
    let e = v.recv().await;
    assert_eq!(e["code"], "identity_invalid");
    assert!(e["message"].as_str().unwrap().contains("sub"), "{e}");
    assert_open(&mut v).await;
    v.send(json!({"type": "identify", "identityToken": "garbage"}))
        .await;
    assert_eq!(v.recv().await["code"], "identity_invalid");
    v.send(json!({"type": "identify", "identityToken": rs256("alice")}))
        .await;
    assert_eq!(v.recv().await["endUserId"], w["endUserId"]);
}

#[tokio::test]
// After a session with tokens (hello, identify, refusals), neither the SQLite file nor its WAL contains any token's signature.
async fn tokens_are_never_stored() {
    let s = Server::start(&pem_config()).await;
    let tokens = [
        rs256("alice"),
        rs256("alice"),
        sign(Algorithm::ES256, "ec-private.pem", None, &claims("bob")),
    ];
    let mut v = s.visitor().await;
    hello_with_token(&mut v, &tokens[0]).await;
    let id = uuid();
    v.send(json!({"type": "createConversation", "conversationId": id}))
        .await;
    v.recv().await;
    v.send(send_message(&id, &uuid(), "hello")).await;
    v.recv_until(|f| f["type"] == "ack").await;
    v.send(json!({"type": "identify", "identityToken": tokens[1]}))
        .await;
    v.recv_until(|f| f["type"] == "welcome").await;
    v.send(json!({"type": "identify", "identityToken": tokens[2]}))
        .await;
    v.recv_until(|f| f["type"] == "error").await;
    let mut files = Vec::new();
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", s.db_path().display());
        if let Ok(bytes) = std::fs::read(&path) {
            files.push(bytes);
        }
    }
    assert!(!files.is_empty());
    let stored = files.concat();
    assert!(
        stored.windows(5).any(|w| w == b"alice"),
        "the subject is stored"
    );
    for token in &tokens {
        let signature = token.rsplit('.').next().unwrap().as_bytes();
        assert!(
            !stored.windows(signature.len()).any(|w| w == signature),
            "a token's signature is in the database"
        );
    }
}

#[test]
// A verified deployment without issuer, or with a key file that cannot be read or is not a key, is refused with its field and the file's path; key paths are relative to the config file.
fn config_errors_name_the_field_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    std::fs::copy(key_file("rsa-public.pem"), dir.path().join("keys/a.pem")).unwrap();
    std::fs::copy(
        key_file("rsa-private.pem"),
        dir.path().join("keys/private.pem"),
    )
    .unwrap();
    let load = |auth: &str| {
        let text = format!(
            r#"
[[deployment]]
org_id = "{ORG}"
name = "Open"
allowed_origins = ["http://127.0.0.1:*"]
queue = "support"
[[deployment]]
org_id = "{ORG}"
name = "Verified"
allowed_origins = ["http://127.0.0.1:*"]
queue = "support"
[deployment.auth]
mode = "verified"
{auth}
[[queue]]
name = "support"
"#
        );
        let path = dir.path().join("deployments.toml");
        std::fs::write(&path, text).unwrap();
        em_server::Config::load(&path).map_err(|e| e.to_string())
    };
    let ok = load(&format!(
        "issuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\npublic_keys = [\"keys/a.pem\"]"
    ));
    assert!(ok.is_ok(), "{ok:?}");

    let e = load(&format!(
        "audience = \"{AUDIENCE}\"\npublic_keys = [\"keys/a.pem\"]"
    ))
    .unwrap_err();
    assert!(
        e.ends_with("deployment[1].auth.issuer: required when mode = \"verified\""),
        "{e}"
    );

    let e = load(&format!(
        "issuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\npublic_keys = [\"keys/a.pem\", \"keys/missing.pem\"]"
    ))
    .unwrap_err();
    let missing = dir.path().join("keys/missing.pem");
    assert!(
        e.contains(&format!(
            "deployment[1].auth.public_keys[1]: cannot read {}",
            missing.display()
        )),
        "{e}"
    );

    let e = load(&format!(
        "issuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\npublic_keys = [\"keys/private.pem\"]"
    ))
    .unwrap_err();
    assert!(
        e.contains("deployment[1].auth.public_keys[0]") && e.contains("holds a private key"),
        "{e}"
    );

    let e = load(&format!(
        "issuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks_file = \"keys/a.pem\""
    ))
    .unwrap_err();
    assert!(
        e.contains("deployment[1].auth.jwks_file") && e.contains("is not a JWKS"),
        "{e}"
    );

    let e = load(&format!(
        "issuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\npublic_keys = [\"keys/a.pem\"]\nleeway_seconds = 3600"
    ))
    .unwrap_err();
    assert!(
        e.ends_with("deployment[1].auth.leeway_seconds: at most 300"),
        "{e}"
    );

    let e = load(&format!("issuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"")).unwrap_err();
    assert!(
        e.contains("deployment[1].auth.public_keys: list at least one key file"),
        "{e}"
    );
}

#[test]
// The demo's Demo_Verified deployment accepts RS256 tokens signed with the test key, as browser tests mint them.
fn demo_verified_accepts_tokens_signed_with_the_test_key() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/deployments.toml");
    let config = em_server::Config::load(&path).unwrap();
    let demo = config.deployment(ORG, "Demo_Verified").unwrap();
    let claims = json!({"iss": "https://demo.embedded-messaging.test",
                        "aud": "embedded-messaging-demo", "sub": "alice", "exp": now_secs() + 600});
    let token = sign(Algorithm::RS256, "rsa-private.pem", None, &claims);
    let identity = em_server::identity::verify(&demo.auth, &token, now_secs() * 1000).unwrap();
    assert_eq!(identity.subject, "alice");
    let forged = sign(Algorithm::RS256, "other-rsa-private.pem", None, &claims);
    assert!(em_server::identity::verify(&demo.auth, &forged, now_secs() * 1000).is_err());
}
