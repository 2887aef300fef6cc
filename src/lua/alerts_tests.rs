//! `rawrxd.alerts` and `rawrxd.webhook` through the host: rules files edited on disk (applied at
//! the next `observe`), broken edits (error with file:line, old rules kept), transitions stored
//! in the run, and webhooks reached on a loopback server.

use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use crate::store::Store;
use crate::webhook::test_server::{Reply, TestServer};

const RULES_V1: &str = "return {\n  { name = \"rss\", metric = \"rss_mb\", above = 100 },\n}\n";
const RULES_V2: &str = "return {\n  { name = \"rss\", metric = \"rss_mb\", above = 500 },\n  \
                        stalled = { metric = \"requests_ok\", kind = \"no_progress\", for_s = 20 },\n}\n";
const RULES_BROKEN: &str =
    "return {\n  { name = \"rss\", metric = \"rss_mb\", above = 1 },\n  { name = \"x\" metric = \"y\" },\n}\n";

/// Writes like an editor: a new file renamed over the old one.
fn save(path: &Path, text: &str) {
    let tmp = path.with_extension("lua.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A host whose script opened a results db, began a run and made `a` (rules from `rules.lua`,
/// a generic webhook from `$var`).
fn alerts_host(var: &str) -> (tempfile::TempDir, Host, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.lua");
    std::fs::write(&rules, RULES_V1).unwrap();
    let script = dir.path().join("plan.lua");
    std::fs::write(
        &script,
        format!(
            r#"local rx = require "rawrxd"
            rx.results.open(rx.args.db)
            run = rx.results.begin_run {{ phase = "soak", name = "alerts" }}
            a = rx.alerts.new {{
              rules = rx.args.rules,
              webhooks = {{ {{ kind = "generic", url_env = "{var}" }} }},
              tries = 1,
              run = run, -- explicit: the tests call `observe` after the script (and its run) ended
            }}
            "#
        ),
    )
    .unwrap();
    let args = [
        "--db".to_string(),
        dir.path().join("r.sqlite").to_string_lossy().into_owned(),
        "--rules".to_string(),
        rules.to_string_lossy().into_owned(),
    ];
    let host = Host::with_debounce(&script, &args, Duration::from_millis(10)).unwrap();
    host.run().unwrap();
    (dir, host, rules)
}

fn eval<T: mlua::FromLuaMulti>(h: &Host, code: &str) -> T {
    h.lua().load(code).eval().unwrap()
}

#[test]
fn rules_file_edits_apply_at_the_next_observe_and_broken_edits_keep_the_old_rules() {
    let server = TestServer::start(Reply::Status(200));
    let var = "RAWRXD_TEST_ALERTS_LUA_HOOK";
    std::env::set_var(var, format!("{}/alerts/SECRET", server.base));
    let (dir, h, rules) = alerts_host(var);

    let kinds: String = eval(
        &h,
        r#"local out = {}
           for i, v in ipairs { 50, 150, 150 } do
             for _, t in ipairs(a:observe { ts = i * 10, rss_mb = v, requests_ok = 7 }) do
               out[#out + 1] = t.rule .. ":" .. t.kind .. ":" .. tostring(t.notify)
             end
           end
           return table.concat(out, ",")"#,
    );
    assert_eq!(kinds, "rss:firing:true");
    assert!(eval::<bool>(&h, "return a:flush(10)"));
    let got = server.recv();
    assert_eq!(got.path, "/alerts/SECRET");
    assert_eq!(got.body["alert"], "rss");
    assert_eq!(got.body["state"], "firing");
    assert_eq!(got.body["value"], 150.0);

    // Edit: the limit rises to 500 (rss resolves) and a no-progress rule appears.
    save(&rules, RULES_V2);
    assert_eq!(h.reload_now(&[&rules]).unwrap(), Some(1));
    let out: String = eval(
        &h,
        r#"local out = {}
           for _, ts in ipairs { 40, 50, 60, 70 } do
             for _, t in ipairs(a:observe { ts = ts, rss_mb = 150, requests_ok = 7 }) do
               out[#out + 1] = t.rule .. ":" .. t.kind .. "@" .. t.ts
             end
           end
           return table.concat(out, ",")"#,
    );
    // The new rule first sees requests_ok at ts 40: pending at 50 (stalled 10 s), firing at 60
    // (20 s).
    assert_eq!(
        out,
        "rss:resolved@40.0,stalled:pending@50.0,stalled:firing@60.0"
    );
    assert_eq!(
        eval::<String>(&h, "return table.concat(a:rules(), ',')"),
        "rss,stalled"
    );

    // A broken edit: error with file:line, the last good rules stay.
    save(&rules, RULES_BROKEN);
    assert_eq!(h.reload_now(&[&rules]).unwrap(), None);
    let err: String = eval(&h, "return a:reload_error()");
    assert!(err.starts_with(&format!("{}:3:", rules.display())), "{err}");
    assert!(err.ends_with("(keeping the previous alert rules)"), "{err}");
    assert_eq!(h.last_reload_error().as_deref(), Some(err.as_str()));
    assert_eq!(
        eval::<String>(&h, "return table.concat(a:rules(), ',')"),
        "rss,stalled"
    );
    let t: String = eval(
        &h,
        "local t = a:observe { ts = 80, rss_mb = 600, requests_ok = 8 } \
         local s = {} for _, x in ipairs(t) do s[#s + 1] = x.rule .. ':' .. x.kind end \
         return table.concat(s, ',')",
    );
    // Still the v2 rules: rss > 500 fires; the counter moved: stalled resolves.
    assert_eq!(t, "rss:firing,stalled:resolved");

    // Through the watcher: observe is the safe point that picks a settled edit up.
    save(&rules, RULES_V1);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ts = 90;
    loop {
        let reloads: u64 = eval(
            &h,
            &format!("a:observe {{ ts = {ts}, rss_mb = 50 }} return a:reloads()"),
        );
        if reloads == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the edit was not picked up by observe"
        );
        ts += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        eval::<String>(&h, "return table.concat(a:rules(), ',')"),
        "rss"
    );
    assert!(eval::<Option<String>>(&h, "return a:reload_error()").is_none());

    // Every transition is in the run, the URL nowhere.
    assert!(eval::<bool>(&h, "return a:flush(10)"));
    let run: i64 = eval(&h, "return run");
    let store = Store::open(dir.path().join("r.sqlite")).unwrap();
    let events = store.events(crate::store::RunId(run)).unwrap();
    // Each with the configuration generation it was evaluated under: 0 before the first edit,
    // 1 after it (the broken edit changes nothing).
    let alerts: Vec<String> = events
        .iter()
        .filter(|e| e.kind == "alert")
        .map(|e| {
            format!(
                "{}:{}@{}",
                e.payload["rule"].as_str().unwrap(),
                e.payload["transition"].as_str().unwrap(),
                e.payload["generation"]
            )
        })
        .collect();
    assert_eq!(
        alerts[..6],
        [
            "rss:firing@0",
            "rss:resolved@1",
            "stalled:pending@1",
            "stalled:firing@1",
            "rss:firing@1",
            "stalled:resolved@1"
        ]
    );
    let delivered = events
        .iter()
        .filter(|e| e.kind == "webhook" && e.payload["outcome"] == "delivered")
        .count();
    assert!(delivered >= 5, "{events:?}");
    let json = crate::store::export(
        &store,
        &[crate::store::RunId(run)],
        crate::store::ExportFormat::Json,
    )
    .unwrap();
    assert!(!json.contains("SECRET"), "{json}");
}

#[test]
fn webhook_send_delivers_ad_hoc_text_and_never_echoes_a_url() {
    let server = TestServer::start(Reply::Status(200));
    let var = "RAWRXD_TEST_WEBHOOK_SEND_HOOK";
    std::env::set_var(var, format!("{}/services/T1/B2/SECRET", server.base));
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("plan.lua");
    std::fs::write(
        &script,
        format!(
            r#"local rx = require "rawrxd"
            assert(rx.webhook.send {{ kind = "slack", url_env = "{var}", text = "soak started" }})
            assert(rx.webhook.flush(10))
            stats = rx.webhook.stats()
            local ok, e = pcall(rx.webhook.send, {{ kind = "discord", url = "hxxp://SECRET", text = "x" }})
            assert(not ok)
            bad_url = rx.error_message(e)
            ok, e = pcall(rx.webhook.send, {{ kind = "discord", url = {{ "SECRET" }}, text = "x" }})
            bad_type = rx.error_message(e)
            ok, e = pcall(rx.webhook.send, {{ kind = "slack", url_env = "RAWRXD_TEST_UNSET_VAR_X", text = "x" }})
            unset = rx.error_message(e)
            "#
        ),
    )
    .unwrap();
    let h = Host::new(&script, &[]).unwrap();
    h.run().unwrap();
    let got = server.recv();
    assert_eq!(got.path, "/services/T1/B2/SECRET");
    assert_eq!(got.body, serde_json::json!({ "text": "soak started" }));
    assert_eq!(eval::<u64>(&h, "return stats.sent"), 1);
    for (name, want) in [
        ("bad_url", "rawrxd.webhook.send: webhook URL of discord webhook (configured URL) must be an http:// or https:// URL"),
        ("bad_type", "rawrxd.webhook.send: field 'url': expected a string, got table"),
        ("unset", "rawrxd.webhook.send: slack webhook ($RAWRXD_TEST_UNSET_VAR_X): environment variable RAWRXD_TEST_UNSET_VAR_X is not set"),
    ] {
        let msg: String = eval(&h, &format!("return {name}"));
        assert!(!msg.contains("SECRET"), "{msg}");
        assert!(msg.contains(want), "{name}: {msg}");
    }
}

#[test]
fn inline_rules_and_option_errors() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("plan.lua");
    std::fs::write(
        &script,
        r#"local rx = require "rawrxd"
        local a = rx.alerts.new { rules = {
          { name = "slow", metric = "tokens_per_s", kind = "window", agg = "mean", window_s = 20, below = 10 },
        } }
        local t1 = a:observe { ts = 0, tokens_per_s = 12 }
        local t2 = a:observe { ts = 10, tokens_per_s = 4 }
        assert(#t1 == 0 and #t2 == 1 and t2[1].kind == "firing" and t2[1].value == 8, t2[1] and t2[1].value)
        local st = a:state()
        assert(st.slow.state == "firing" and st.slow.since == 10)
        local s = a:stats()
        assert(s.sent == 0 and s.dropped == 0)
        local ok, e = pcall(rx.alerts.new, { rules = { { name = "x", metric = "m", abovee = 1 } } })
        bad = rx.error_message(e)
        "#,
    )
    .unwrap();
    let h = Host::new(&script, &[]).unwrap();
    h.run().unwrap();
    let bad: String = eval(&h, "return bad");
    assert!(
        bad.contains("rawrxd.alerts.new: rules[1] ('x'): unknown field 'abovee'"),
        "{bad}"
    );
}
