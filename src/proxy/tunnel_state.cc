// tunnel_state.cc holds the transitions of one tunnel. They are pure: no socket, no stream, no
// ring. `Tunnel` performs the steps they return and reports what happened next.

#include "src/proxy/tunnel_state.h"

namespace zt::proxy {

std::string_view to_string(TunnelSide side) {
    switch (side) {
        case TunnelSide::outbound:
            return "outbound";
        case TunnelSide::inbound:
            return "inbound";
    }
    return "unknown";
}

std::string_view to_string(TunnelPhase phase) {
    switch (phase) {
        case TunnelPhase::waiting_link:
            return "waiting_link";
        case TunnelPhase::awaiting_response:
            return "awaiting_response";
        case TunnelPhase::connecting:
            return "connecting";
        case TunnelPhase::open:
            return "open";
        case TunnelPhase::closed:
            return "closed";
    }
    return "unknown";
}

std::string_view to_string(SocketReading reading) {
    switch (reading) {
        case SocketReading::idle:
            return "idle";
        case SocketReading::reading:
            return "reading";
        case SocketReading::framing:
            return "framing";
        case SocketReading::ended:
            return "ended";
    }
    return "unknown";
}

std::string_view to_string(SocketWriting writing) {
    switch (writing) {
        case SocketWriting::open:
            return "open";
        case SocketWriting::finishing:
            return "finishing";
        case SocketWriting::ended:
            return "ended";
    }
    return "unknown";
}

std::string_view to_string(StreamState stream) {
    switch (stream) {
        case StreamState::none:
            return "none";
        case StreamState::open:
            return "open";
        case StreamState::closed:
            return "closed";
    }
    return "unknown";
}

std::string_view to_string(SocketEnding ending) {
    switch (ending) {
        case SocketEnding::graceful:
            return "graceful";
        case SocketEnding::reset:
            return "reset";
    }
    return "unknown";
}

std::string_view to_string(TunnelEvent event) {
    switch (event) {
        case TunnelEvent::stream_opened:
            return "stream_opened";
        case TunnelEvent::answered:
            return "answered";
        case TunnelEvent::refused:
            return "refused";
        case TunnelEvent::upstream_failed:
            return "upstream_failed";
        case TunnelEvent::read_data:
            return "read_data";
        case TunnelEvent::read_eof:
            return "read_eof";
        case TunnelEvent::read_no_buffer:
            return "read_no_buffer";
        case TunnelEvent::framed:
            return "framed";
        case TunnelEvent::end_stream:
            return "end_stream";
        case TunnelEvent::writes_drained:
            return "writes_drained";
        case TunnelEvent::stream_reset:
            return "stream_reset";
        case TunnelEvent::stream_aborted:
            return "stream_aborted";
        case TunnelEvent::stream_closed:
            return "stream_closed";
        case TunnelEvent::link_lost:
            return "link_lost";
        case TunnelEvent::socket_reset:
            return "socket_reset";
        case TunnelEvent::failed:
            return "failed";
    }
    return "unknown";
}

TunnelState::TunnelState(TunnelSide side)
    : side_(side)
    , phase_(side == TunnelSide::outbound ? TunnelPhase::waiting_link : TunnelPhase::connecting)
    , stream_(side == TunnelSide::outbound ? StreamState::none : StreamState::open) {}

TunnelSteps TunnelState::on(TunnelEvent event) {
    if (phase_ == TunnelPhase::closed) {
        return {};
    }
    TunnelSteps steps;
    switch (event) {
        case TunnelEvent::stream_opened:
            phase_ = TunnelPhase::awaiting_response;
            stream_ = StreamState::open;
            return steps;
        case TunnelEvent::answered:
            return open_flow();
        case TunnelEvent::refused:
            // The answer ended the stream; the application's connection is closed, not reset,
            // as ztunnel closes it.
            stream_ = StreamState::closed;
            return close(steps);
        case TunnelEvent::upstream_failed:
            stream_ = StreamState::closed;  // The 503 ended it.
            return fail(false);
        case TunnelEvent::read_data:
            reading_ = SocketReading::framing;
            return steps;
        case TunnelEvent::read_eof:
            reading_ = SocketReading::ended;
            steps.end_stream = true;
            return finish_if_done(steps);
        case TunnelEvent::read_no_buffer:
            // Still reading: again at once, into the tunnel's own buffer.
            steps.read = true;
            return steps;
        case TunnelEvent::framed:
            reading_ = SocketReading::reading;
            steps.read = true;
            return finish_if_done(steps);
        case TunnelEvent::end_stream:
            if (writing_ == SocketWriting::open) {
                writing_ = SocketWriting::finishing;
            }
            steps.write = true;
            return steps;
        case TunnelEvent::writes_drained:
            if (writing_ != SocketWriting::finishing || phase_ != TunnelPhase::open) {
                return steps;
            }
            writing_ = SocketWriting::ended;
            steps.shutdown = true;
            return finish_if_done(steps);
        case TunnelEvent::stream_reset:
            stream_ = StreamState::closed;
            return steps;
        case TunnelEvent::stream_aborted:
            stream_ = StreamState::closed;
            return fail(true);
        case TunnelEvent::stream_closed:
            stream_ = StreamState::closed;
            if (reading_ == SocketReading::ended && writing_ != SocketWriting::open) {
                return steps;  // Both sides finished on the wire; the socket writes finish.
            }
            return fail(true);
        case TunnelEvent::link_lost:
            // The link is gone: nothing more is sent on the stream (no RST_STREAM either).
            if (stream_ == StreamState::open) {
                stream_ = StreamState::closed;
            }
            if (phase_ == TunnelPhase::open && reading_ == SocketReading::ended &&
                writing_ != SocketWriting::open) {
                // Both directions ended on the wire: only socket writes remain. Finishing them
                // without the link spares the application a reset after every byte arrived
                // (a peer closing right after its last stream, as in a drain).
                steps.leave_link = true;
                steps.write = true;
                return steps;
            }
            return fail(false);
        case TunnelEvent::socket_reset:
            return fail(true);
        case TunnelEvent::failed:
            return fail(false);
    }
    return steps;
}

TunnelSteps TunnelState::open_flow() {
    phase_ = TunnelPhase::open;
    reading_ = SocketReading::reading;
    TunnelSteps steps;
    steps.read = true;
    steps.write = true;
    return steps;
}

TunnelSteps TunnelState::fail(bool reset_socket) {
    TunnelSteps steps;
    if (stream_ == StreamState::open) {
        steps.reset_stream = true;
        stream_ = StreamState::closed;
    }
    // Once the application may have seen the tunnel accept bytes, a failure must not look like
    // a clean close to it.
    if (reset_socket || phase_ == TunnelPhase::open || phase_ == TunnelPhase::connecting) {
        ending_ = SocketEnding::reset;
    }
    return close(steps);
}

TunnelSteps TunnelState::close(TunnelSteps steps) {
    if (reading_ == SocketReading::framing) {
        // HTTP/2 still frames the last read: RST_STREAM makes it forget those bytes before their
        // buffer is reused, even when the stream is otherwise done.
        steps.reset_stream = true;
    }
    phase_ = TunnelPhase::closed;
    reading_ = SocketReading::ended;
    writing_ = SocketWriting::ended;
    steps.read = false;
    steps.write = false;
    steps.close = true;
    return steps;
}

TunnelSteps TunnelState::finish_if_done(TunnelSteps steps) {
    if (phase_ == TunnelPhase::open && reading_ == SocketReading::ended &&
        writing_ == SocketWriting::ended) {
        return close(steps);
    }
    return steps;
}

}  // namespace zt::proxy
