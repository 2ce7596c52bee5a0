#!/usr/bin/env bash
# Proves that tests fail when the behaviour they are named after breaks: each case below
# breaks evbuf or an example endpoint on purpose (one edit), builds it in a throwaway git worktree and runs the
# test that guards that behaviour, which must fail. Prints one line per case and exits 1 if
# any test passed against its break. Slow (a wasm build per browser case, ~20 min in all);
# not part of `npm test`. Needs what `npm test` sets up. Usage: scripts/prove-tests-fail.sh [case…]
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
work="$(mktemp -d)/evbuf"
git -C "$root" worktree add -q --detach "$work" HEAD
trap 'git -C "$root" worktree remove --force "$work"' EXIT
ln -s "$root/node_modules" "$work/node_modules"
# endpoints.test.mjs installs it when missing (a native build): reuse the checkout's.
[ -d "$root/examples/endpoint-express/node_modules" ] &&
  ln -s "$root/examples/endpoint-express/node_modules" "$work/examples/endpoint-express/node_modules"
(cd "$work" && cargo build -q --release -p evbuf-collector)
logs="$work/logs"
mkdir -p "$logs"
survived=0

# case NAME FILE PERL-EDIT KIND TEST: KIND is e2e (TEST = file:name pattern) or cargo
# (TEST = test target:name filter).
case_() {
  local name=$1 file=$2 edit=$3 kind=$4 test=$5
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
  git -C "$work" checkout -q -- src tests js examples
  perl -0pi -e "$edit" "$work/$file"
  if git -C "$work" diff --quiet; then
    echo "$name: the edit no longer applies to $file (update this script)"; survived=1; return
  fi
  local ok
  if [ "$kind" = e2e ]; then
    # A break of an example endpoint leaves the package as built.
    if [[ $file != examples/* || ! -d $work/pkg ]]; then
      (cd "$work" && bash scripts/build.sh > "$logs/$name.build" 2>&1) || { echo "$name: build failed"; survived=1; return; }
    fi
    # A break can wedge a test's cleanup (a collector waiting on held requests): bounded.
    (cd "$work" && timeout 900 node --test --test-concurrency=1 --test-name-pattern="${test#*:}" "tests/e2e/${test%%:*}" > "$logs/$name.log" 2>&1)
    ok=$?
  else
    (cd "$work" && timeout 900 cargo test -q --test "${test%%:*}" "${test#*:}" > "$logs/$name.log" 2>&1)
    ok=$?
  fi
  if [ $ok -eq 0 ]; then
    echo "$name: SURVIVED — $test passed against the break"; survived=1
  else
    echo "$name: caught by $test: $(grep -m1 -E 'error:|panicked|Test failed' -A3 "$logs/$name.log" | grep -v '^ *[-|]*$' | head -2 | tr -s ' \n' ' ')"
  fi
}

ONLY="$*"
case_ offline-ignored src/core/mod.rs 's/self\.leader && self\.online && self\.in_flight/self.leader && self.in_flight/' \
  e2e 'scenarios.test.mjs:^offline'
case_ fixed-retry-250ms src/core/retry.rs 's/(let bound = backoff_bound_ms\(base_ms, max_ms, attempt\);)/$1 if bound > 0 { return 250; }/' \
  e2e 'scenarios.test.mjs:^outage'
case_ no-unload-send src/core/unload.rs 's/if !self\.online \{/if true {/' \
  e2e 'delivery.test.mjs:^unload path alone'
case_ no-early-flush src/core/mod.rs 's/\|\| queue\.free_len\(\) >= self\.config\.max_buffer_size/|| false/' \
  e2e 'scenarios.test.mjs:^steady with default'
case_ followers-send src/core/mod.rs 's/self\.leader && self\.online && self\.in_flight/self.online && self.in_flight/' \
  e2e 'scenarios.test.mjs:^several tabs'
case_ no-in-flight-guard src/core/mod.rs 's/self\.leader && self\.online && self\.in_flight\.is_none\(\)/self.leader \&\& self.online/' \
  e2e 'delivery.test.mjs:^hang'
case_ new-tab-counted-late src/web/client/tabs.rs 's/if opened \{\s*inner\.core\.borrow_mut\(\)\.handle_other_tabs\(true\);\s*\}//' \
  e2e 'robustness.test.mjs:^when the sending tab closes'
case_ headers-not-sent src/web/transport.rs 's/request_headers\.set\(name, value\)\?;/let _ = (name, value);/' \
  e2e 'robustness.test.mjs:^the headers option'
# Leaked, as dropping the client would release it anyway.
case_ shutdown-keeps-the-role src/web/client/mod.rs 's/(self\.inner\.listeners\.borrow_mut\(\)\.clear\(\);\s*)self\.inner\.leadership\.borrow_mut\(\)\.take\(\);/$1std::mem::forget(self.inner.leadership.borrow_mut().take());/' \
  e2e 'robustness.test.mjs:^shutdown\(\) hands'
case_ acknowledged-also-dropped src/core/mod.rs 's/(self\.stats\.acknowledged \+= keys\.len\(\) as u64;\s*)self\.forget\(&keys\);/${1}let ids: Vec<String> = self.forget(&keys).iter().map(Queued::id).collect(); self.actions.push(Action::Report(Report::Dropped { reason: DropReason::Age, ids, detail: String::new() }));/' \
  cargo 'core_properties:no_event_disappears'
case_ timer-armed-while-unable-to-send src/core/mod.rs 's/let send = if self\.can_send\(\) && self\.queue/let send = if self.queue/' \
  cargo 'core_leadership:'
case_ no-backoff-floor src/core/retry.rs 's/pub const MIN_WAIT_MS: u64 = 50;/pub const MIN_WAIT_MS: u64 = 0;/' \
  cargo 'core_retry:no_wait_is_shorter_than_the_50_ms_floor'
case_ snapshot-before-backoff tests/sim/mod.rs 's/(\s*self\.core\s*\.handle_backoff_restored\(self\.now, self\.remembered_backoff\);)(\s*let stored = self\.store\.load\(\);\s*let below = self\.store\.next_key\(\);\s*self\.core\.handle_snapshot\(self\.now, stored, below\);)/$2$1/' \
  cargo 'core_retry:a_reloaded_page_with_a_full_buffer'
case_ unstored-not-posted src/core/unload.rs 's/\.chain\(&self\.unpersisted\)/.chain(&self.unpersisted).take(0)/' \
  e2e 'delivery.test.mjs:^log and leave: 100'
case_ logged-while-hidden-not-posted src/core/unload.rs 's/if self\.hidden && self\.online \{/if false {/' \
  e2e 'delivery.test.mjs:^the app logs last'
case_ posted-unstored-sent-again src/core/storage_inputs.rs 's/\s*self\.store_posted\(&persisted, keys\);//' \
  cargo 'core_unload:'
case_ waiting-calls-not-posted js/index.js 's/if \(started \|\| endpoint === null\) return;/return;/' \
  e2e 'delivery.test.mjs:before init'
case_ forbidden-header-accepted js/index.js 's/if \(!kept\) throw/if (false) throw/' \
  e2e 'package.test.mjs:^init checks endpoint'
case_ stored-posted-on-navigation src/core/unload.rs 's/ && !leaving_for_next_page \{/ {/' \
  e2e 'navigation.test.mjs:^multi-page site:'
case_ snapshot-waits-for-the-interval src/core/storage_inputs.rs 's/\s*self\.flush_now \|= self\.queue\.free_len\(\) > 0;//' \
  cargo 'core_navigation:a_page_that_starts_sends_what_it_finds_stored_at_once'
case_ endpoint-parses-only-json examples/endpoint-express/server.js 's/type: \(\) => true, //' \
  e2e 'endpoints.test.mjs:^the unload post'
case_ endpoint-hides-retry-after examples/endpoint-express/server.js "s/, 'Access-Control-Expose-Headers': 'Retry-After'//" \
  e2e 'endpoints.test.mjs:^429'
case_ endpoint-ignores-gzip examples/endpoint-python/server.py 's/if content_encoding == "gzip":/if False:/; s/elif content_encoding not in/elif False and content_encoding not in/' \
  e2e 'endpoints.test.mjs:^compression'
case_ endpoint-inserts-duplicates examples/endpoint-python/server.py 's/INSERT OR IGNORE/INSERT/' \
  e2e 'endpoints.test.mjs:^normal sends'
case_ endpoint-cors-only-on-success examples/endpoint-python/server.py 's/(\s+)(self\.send_header\("Access-Control-Allow-Origin")/$1if self._status < 300: $2/; s/(\s+)(self\.send_response\(status\))/$1self._status = status$1$2/' \
  e2e 'endpoints.test.mjs:^400'
exit $survived
