// link_state.cc holds the transitions of one HBONE link and the rule for holding its output.
// They are pure: no socket, no engine, no ring.

#include "src/proxy/link_state.h"

namespace zt::proxy {

std::string_view to_string(LinkRole role) {
    switch (role) {
        case LinkRole::client:
            return "client";
        case LinkRole::server:
            return "server";
    }
    return "unknown";
}

std::string_view to_string(LinkPhase phase) {
    switch (phase) {
        case LinkPhase::dialing:
            return "dialing";
        case LinkPhase::handshaking:
            return "handshaking";
        case LinkPhase::open:
            return "open";
        case LinkPhase::closing:
            return "closing";
        case LinkPhase::closed:
            return "closed";
    }
    return "unknown";
}

std::string_view to_string(LinkReceiving receiving) {
    switch (receiving) {
        case LinkReceiving::idle:
            return "idle";
        case LinkReceiving::own_buffer:
            return "own_buffer";
        case LinkReceiving::lent_buffer:
            return "lent_buffer";
        case LinkReceiving::giving_back:
            return "giving_back";
    }
    return "unknown";
}

std::string_view to_string(LinkEvent event) {
    switch (event) {
        case LinkEvent::dialed:
            return "dialed";
        case LinkEvent::receiving_own:
            return "receiving_own";
        case LinkEvent::receiving_lent:
            return "receiving_lent";
        case LinkEvent::received:
            return "received";
        case LinkEvent::handshake_done:
            return "handshake_done";
        case LinkEvent::first_answer:
            return "first_answer";
        case LinkEvent::idle_release:
            return "idle_release";
        case LinkEvent::failed:
            return "failed";
        case LinkEvent::output_done:
            return "output_done";
    }
    return "unknown";
}

LinkState::LinkState(LinkRole role)
    : role_(role), phase_(role == LinkRole::client ? LinkPhase::dialing : LinkPhase::handshaking) {}

LinkSteps LinkState::on(LinkEvent event) {
    LinkSteps steps;
    switch (event) {
        case LinkEvent::dialed:
            if (phase_ != LinkPhase::dialing) {
                return steps;
            }
            // The client speaks first.
            phase_ = LinkPhase::handshaking;
            steps.start_tls = true;
            steps.receive = true;
            steps.flush = true;
            return steps;
        case LinkEvent::receiving_own:
            receiving_ = LinkReceiving::own_buffer;
            return steps;
        case LinkEvent::receiving_lent:
            receiving_ = LinkReceiving::lent_buffer;
            return steps;
        case LinkEvent::received:
            receiving_ = LinkReceiving::idle;
            return steps;
        case LinkEvent::handshake_done:
            if (phase_ != LinkPhase::handshaking) {
                return steps;
            }
            phase_ = LinkPhase::open;
            steps.open_streams = role_ == LinkRole::client;
            return steps;
        case LinkEvent::first_answer:
            answered_ = true;
            return steps;
        case LinkEvent::idle_release:
            if (receiving_ == LinkReceiving::own_buffer) {
                receiving_ = LinkReceiving::giving_back;
                steps.cancel_receive = true;
            }
            return steps;
        case LinkEvent::failed:
            if (ending()) {
                return steps;
            }
            steps.cancel_dial = phase_ == LinkPhase::dialing;
            steps.cancel_receive = receiving_ != LinkReceiving::idle;
            phase_ = LinkPhase::closing;
            steps.end_tunnels = true;
            steps.flush = true;  // An alert or a final GOAWAY may be due.
            return steps;
        case LinkEvent::output_done:
            if (phase_ == LinkPhase::closing) {
                phase_ = LinkPhase::closed;
            }
            return steps;
    }
    return steps;
}

bool hold_output(LinkRole role, bool finished_handshake, bool first_answer,
                 bool upstream_connecting) {
    if (role == LinkRole::server) {
        return finished_handshake && upstream_connecting;
    }
    return first_answer;
}

}  // namespace zt::proxy
