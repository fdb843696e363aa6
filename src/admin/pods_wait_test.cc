// Tests of the waiting form of `GET /pods`: its query and the rule that ends a wait (the
// content asked for, or a later one, answered for by every worker; or a reload since the wait
// began and every worker answered for what is applied).

#include "src/admin/pods_wait.h"

#include <string>
#include <vector>

#include <doctest/doctest.h>

using namespace zt::admin;

namespace {

const std::string kA(64, 'a');
const std::string kB(64, 'b');
const std::string kC(64, 'c');

}  // namespace

TEST_CASE("pods wait: the query takes a sha256 and a bounded timeout; other keys are ignored") {
    PodsWaitQuery none = parse_pods_wait("");
    CHECK_FALSE(none.wait);
    CHECK(none.error.empty());
    CHECK_FALSE(parse_pods_wait("verbose=1").wait);

    PodsWaitQuery plain = parse_pods_wait("wait=" + kA);
    CHECK(plain.wait);
    CHECK(plain.error.empty());
    CHECK(plain.sha256 == kA);
    CHECK(plain.timeout_ms == kPodsWaitDefaultMs);

    PodsWaitQuery timed = parse_pods_wait("timeout_ms=250&wait=" + kB);
    CHECK(timed.error.empty());
    CHECK(timed.sha256 == kB);
    CHECK(timed.timeout_ms == 250);
    CHECK(parse_pods_wait("wait=" + kB + "&timeout_ms=0").timeout_ms == 0);

    // Bad input is refused with a reason, never guessed at.
    CHECK_FALSE(parse_pods_wait("wait=").error.empty());
    CHECK_FALSE(parse_pods_wait("wait=abc").error.empty());
    CHECK_FALSE(parse_pods_wait("wait=" + std::string(64, 'A')).error.empty());  // upper case
    CHECK_FALSE(parse_pods_wait("wait=" + kA + "0").error.empty());              // 65 digits
    CHECK_FALSE(parse_pods_wait("wait=" + kA + "&timeout_ms=-1").error.empty());
    CHECK_FALSE(parse_pods_wait("wait=" + kA + "&timeout_ms=30001").error.empty());
    CHECK_FALSE(parse_pods_wait("wait=" + kA + "&timeout_ms=5s").error.empty());
    CHECK(parse_pods_wait("wait=" + kA + "&timeout_ms=30000").error.empty());
}

TEST_CASE("pods wait: `pod` keys name the pods to answer for, percent-decoded and bounded") {
    CHECK(parse_pods_wait("wait=" + kA).pods.empty());
    PodsWaitQuery some = parse_pods_wait("pod=c1%2F%2FPod%2Fdefault%2Fa&wait=" + kA + "&pod=b");
    CHECK(some.error.empty());
    CHECK(some.pods == std::vector<std::string>{"c1//Pod/default/a", "b"});
    CHECK(parse_pods_wait("pod=c1//Pod/default/a").pods ==
          std::vector<std::string>{"c1//Pod/default/a"});
    CHECK_FALSE(parse_pods_wait("pod=").error.empty());
    std::string many;
    for (size_t i = 0; i <= kPodsFilterMax; ++i) {
        many += "pod=p" + std::to_string(i) + "&";
    }
    CHECK_FALSE(parse_pods_wait(many).error.empty());
}

TEST_CASE("pods wait: over once every worker published for that content or a later one") {
    PodsProgress now;
    now.generations = {{1, kA}, {2, kB}};
    now.reload_attempts = 2;
    now.published = 1;
    CHECK(pods_wait_over(now, kA, 2));        // Answered for already: at once.
    CHECK_FALSE(pods_wait_over(now, kB, 2));  // Applied, but a worker is still on 1.
    now.published = 2;
    CHECK(pods_wait_over(now, kB, 2));
    CHECK(pods_wait_over(now, kA, 2));  // Older content: the workers are past it.
    // The newest generation of repeated bytes counts.
    now.generations = {{1, kA}, {2, kB}, {3, kA}};
    now.reload_attempts = 3;
    CHECK_FALSE(pods_wait_over(now, kA, 3));
    now.published = 3;
    CHECK(pods_wait_over(now, kA, 3));
}

TEST_CASE("pods wait: content not applied yet waits; a reload since the wait began settles it") {
    PodsProgress now;
    CHECK_FALSE(pods_wait_over(now, kA, 0));  // Nothing applied at all.
    now.generations = {{1, kA}};
    now.published = 1;
    now.reload_attempts = 1;
    // kB written but not read yet: held.
    CHECK_FALSE(pods_wait_over(now, kB, 1));
    // A reload ended since (kB was replaced by kC before ztunnel read it, or kB was refused):
    // over once the workers answered for what is applied.
    now.generations = {{1, kA}, {2, kC}};
    now.reload_attempts = 2;
    CHECK_FALSE(pods_wait_over(now, kB, 1));
    now.published = 2;
    CHECK(pods_wait_over(now, kB, 1));
    // A refused reload: nothing new applied, the workers already answered for it.
    PodsProgress refused;
    refused.generations = {{1, kA}};
    refused.published = 1;
    refused.reload_attempts = 2;
    CHECK(pods_wait_over(refused, kB, 1));
    CHECK_FALSE(pods_wait_over(refused, kB, 2));  // The refusal came before this wait.
    // A worker that answered for no known generation holds every wait but on a reload.
    refused.published = 0;
    CHECK_FALSE(pods_wait_over(refused, kA, 2));
}
