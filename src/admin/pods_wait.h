#pragma once

// The waiting form of `GET /pods` (README.md "`GET /pods`"): `GET /pods?wait=<sha256>` with an
// optional `timeout_ms=N` is held until the workers have published their pods' status for the
// config content with that sha256 (or for a later one), so the agent learns that a pod's
// listeners are open the moment they are, without polling. Parsing the query and deciding
// whether the wait is over are these pure functions; the admin handler holds the request
// (`HttpResponse::hold`) and asks again whenever a worker publishes or a reload ends.
//
// Why "or a later one": the agent asks right after its rename, so every reload that starts
// after the request arrives reads that content or a newer one (the watcher runs on the same
// thread as the request). A content ztunnel never applied — it was replaced before ztunnel read
// it, or it was refused — is therefore settled by the first reload attempt after the request:
// the wait then ends once the workers answered for whatever is applied.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zt::admin {

// kPodsWaitDefaultMs is the hold without `timeout_ms`; kPodsWaitMaxMs the longest accepted.
constexpr int64_t kPodsWaitDefaultMs = 5000;
constexpr int64_t kPodsWaitMaxMs = 30000;
// kPodsFilterMax bounds the `pod=` keys of one request.
constexpr size_t kPodsFilterMax = 64;

// PodsWaitQuery is the parsed query of `GET /pods`.
struct PodsWaitQuery {
    bool wait = false;   // `wait` was given: hold until `sha256` is answered for
    std::string sha256;  // 64 lower-case hex digits
    int64_t timeout_ms = kPodsWaitDefaultMs;
    // pods: from `pod=<uid>` (repeatable): answer for these pods only (empty: every pod). A
    // caller that follows a few pods asks for just them, so the answer's size does not grow with
    // the node's pods.
    std::vector<std::string> pods;
    std::string error;  // non-empty: the query is refused (400) with this reason
};

// parse_pods_wait reads `wait`, `timeout_ms` and `pod` from `query` (the part after `?`); other
// keys are ignored, as the plain form ignores them.
PodsWaitQuery parse_pods_wait(std::string_view query);

// PodsProgress is what the control thread knows now.
struct PodsProgress {
    // generations maps the last applied generations to their file's sha256 (oldest first).
    std::vector<std::pair<uint64_t, std::string>> generations;
    // published is the newest generation for which EVERY worker has published its pods' status
    // (0: some worker has not answered for any generation still known).
    uint64_t published = 0;
    // reload_attempts counts the reloads that ended (applied or refused), so a wait can tell
    // whether one ended since it began.
    uint64_t reload_attempts = 0;
};

// pods_wait_over says whether a wait for `sha256` that began when `reload_attempts` was
// `attempts_at_start` is over: its content (or a later one) is answered for by every worker,
// or a reload ended since it began (the content was replaced or refused) and every worker
// answered for what is applied now.
bool pods_wait_over(const PodsProgress& now, std::string_view sha256, uint64_t attempts_at_start);

}  // namespace zt::admin
