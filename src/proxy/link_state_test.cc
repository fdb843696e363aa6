// Transition tests for link_state.cc, without a kernel: a client and a server link through their
// lives, the receive direction giving its buffer back, failures from each phase, and the rule
// that lets a new link's first output wait for the frame that follows.

#include "src/proxy/link_state.h"

#include <initializer_list>
#include <string>

#include <doctest/doctest.h>

namespace {

using zt::proxy::hold_output;
using zt::proxy::LinkEvent;
using zt::proxy::LinkPhase;
using zt::proxy::LinkReceiving;
using zt::proxy::LinkRole;
using zt::proxy::LinkState;
using zt::proxy::LinkSteps;

LinkSteps run(LinkState& state, std::initializer_list<LinkEvent> events) {
    LinkSteps last;
    for (LinkEvent event : events) {
        last = state.on(event);
    }
    return last;
}

std::string steps(const LinkSteps& s) {
    std::string out;
    auto add = [&out](bool on, const char* name) {
        if (on) {
            out += out.empty() ? name : std::string(",") + name;
        }
    };
    add(s.start_tls, "start_tls");
    add(s.receive, "receive");
    add(s.open_streams, "open_streams");
    add(s.cancel_receive, "cancel_receive");
    add(s.cancel_dial, "cancel_dial");
    add(s.end_tunnels, "end_tunnels");
    add(s.flush, "flush");
    return out;
}

struct Row {
    const char* what;
    LinkRole role;
    std::initializer_list<LinkEvent> events;
    LinkPhase phase;
    LinkReceiving receiving;
    const char* last_steps;
};

}  // namespace

TEST_CASE("link_state: every path through a link's life") {
    using E = LinkEvent;
    const LinkRole client = LinkRole::client;
    const LinkRole server = LinkRole::server;
    const Row rows[] = {
            {"a client starts dialling", client, {}, LinkPhase::dialing, LinkReceiving::idle, ""},
            {"dialled: the client speaks first",
             client,
             {E::dialed},
             LinkPhase::handshaking,
             LinkReceiving::idle,
             "start_tls,receive,flush"},
            {"a server starts handshaking",
             server,
             {},
             LinkPhase::handshaking,
             LinkReceiving::idle,
             ""},
            {"handshake done: waiting tunnels open their streams",
             client,
             {E::dialed, E::receiving_own, E::received, E::handshake_done},
             LinkPhase::open,
             LinkReceiving::idle,
             "open_streams"},
            {"handshake done on a server",
             server,
             {E::handshake_done},
             LinkPhase::open,
             LinkReceiving::idle,
             ""},
            {"receiving into a lent buffer",
             server,
             {E::handshake_done, E::receiving_lent},
             LinkPhase::open,
             LinkReceiving::lent_buffer,
             ""},
            {"an idle link gives its own buffer back by cancelling the receive",
             server,
             {E::handshake_done, E::receiving_own, E::idle_release},
             LinkPhase::open,
             LinkReceiving::giving_back,
             "cancel_receive"},
            {"nothing to give back while receiving into a lent buffer",
             server,
             {E::handshake_done, E::receiving_lent, E::idle_release},
             LinkPhase::open,
             LinkReceiving::lent_buffer,
             ""},
            {"the cancelled receive completes",
             server,
             {E::handshake_done, E::receiving_own, E::idle_release, E::received},
             LinkPhase::open,
             LinkReceiving::idle,
             ""},
            {"a failed dial cancels nothing but the dial",
             client,
             {E::failed},
             LinkPhase::closing,
             LinkReceiving::idle,
             "cancel_dial,end_tunnels,flush"},
            {"a failure while receiving cancels the receive and flushes the alert",
             server,
             {E::receiving_own, E::failed},
             LinkPhase::closing,
             LinkReceiving::own_buffer,
             "cancel_receive,end_tunnels,flush"},
            {"failing twice does nothing the second time",
             server,
             {E::failed, E::failed},
             LinkPhase::closing,
             LinkReceiving::idle,
             ""},
            {"closed once the last bytes are out",
             server,
             {E::failed, E::output_done},
             LinkPhase::closed,
             LinkReceiving::idle,
             ""},
            {"output_done before closing changes nothing",
             server,
             {E::output_done},
             LinkPhase::handshaking,
             LinkReceiving::idle,
             ""},
            {"a late dial result after failing is ignored",
             client,
             {E::failed, E::dialed},
             LinkPhase::closing,
             LinkReceiving::idle,
             ""},
    };
    for (const Row& row : rows) {
        CAPTURE(std::string(row.what));
        LinkState state(row.role);
        LinkSteps last = run(state, row.events);
        CHECK(to_string(state.phase()) == to_string(row.phase));
        CHECK(to_string(state.receiving()) == to_string(row.receiving));
        CHECK(steps(last) == row.last_steps);
    }
}

TEST_CASE("link_state: a client link remembers its first answer") {
    LinkState state(LinkRole::client);
    CHECK(!state.answered());
    state.on(LinkEvent::first_answer);
    CHECK(state.answered());
}

TEST_CASE("link_state: which receive may hold the output it leaves") {
    // Server: only the receive that finished the handshake, while an upstream connect runs.
    CHECK(hold_output(LinkRole::server, true, false, true));
    CHECK(!hold_output(LinkRole::server, true, false, false));
    CHECK(!hold_output(LinkRole::server, false, false, true));
    // Client: only the receive that brought the first 200.
    CHECK(hold_output(LinkRole::client, false, true, false));
    CHECK(!hold_output(LinkRole::client, true, false, false));
}
