// Transition tests for tunnel_state.cc, without a kernel: each case feeds a sequence of events
// and checks the phase, both directions and the steps of the last event. They pin the TCP <->
// HTTP/2 mapping (FIN <-> END_STREAM, reset <-> RST_STREAM) and when the application's socket is
// reset rather than closed.

#include "src/proxy/tunnel_state.h"

#include <initializer_list>
#include <string>

#include <doctest/doctest.h>

namespace {

using zt::proxy::SocketEnding;
using zt::proxy::SocketReading;
using zt::proxy::SocketWriting;
using zt::proxy::StreamState;
using zt::proxy::TunnelEvent;
using zt::proxy::TunnelPhase;
using zt::proxy::TunnelSide;
using zt::proxy::TunnelState;
using zt::proxy::TunnelSteps;

// run feeds `events` and returns the last event's steps.
TunnelSteps run(TunnelState& state, std::initializer_list<TunnelEvent> events) {
    TunnelSteps last;
    for (TunnelEvent event : events) {
        last = state.on(event);
    }
    return last;
}

// steps renders the steps that are set, for readable failures.
std::string steps(const TunnelSteps& s) {
    std::string out;
    auto add = [&out](bool on, const char* name) {
        if (on) {
            out += out.empty() ? name : std::string(",") + name;
        }
    };
    add(s.end_stream, "end_stream");
    add(s.reset_stream, "reset_stream");
    add(s.leave_link, "leave_link");
    add(s.read, "read");
    add(s.write, "write");
    add(s.shutdown, "shutdown");
    add(s.close, "close");
    return out;
}

struct Row {
    const char* what;
    TunnelSide side;
    std::initializer_list<TunnelEvent> events;
    TunnelPhase phase;
    SocketReading reading;
    SocketWriting writing;
    StreamState stream;
    SocketEnding ending;
    const char* last_steps;
};

}  // namespace

TEST_CASE("tunnel_state: every path through a tunnel's life") {
    using E = TunnelEvent;
    const TunnelSide out = TunnelSide::outbound;
    const TunnelSide in = TunnelSide::inbound;
    const Row rows[] = {
            {"outbound starts waiting for its link",
             out,
             {},
             TunnelPhase::waiting_link,
             SocketReading::idle,
             SocketWriting::open,
             StreamState::none,
             SocketEnding::graceful,
             ""},
            {"CONNECT submitted",
             out,
             {E::stream_opened},
             TunnelPhase::awaiting_response,
             SocketReading::idle,
             SocketWriting::open,
             StreamState::open,
             SocketEnding::graceful,
             ""},
            {"200: both directions start",
             out,
             {E::stream_opened, E::answered},
             TunnelPhase::open,
             SocketReading::reading,
             SocketWriting::open,
             StreamState::open,
             SocketEnding::graceful,
             "read,write"},
            {"non-200: closed, not reset",
             out,
             {E::stream_opened, E::refused},
             TunnelPhase::closed,
             SocketReading::ended,
             SocketWriting::ended,
             StreamState::closed,
             SocketEnding::graceful,
             "close"},
            {"inbound starts connecting with its stream open",
             in,
             {},
             TunnelPhase::connecting,
             SocketReading::idle,
             SocketWriting::open,
             StreamState::open,
             SocketEnding::graceful,
             ""},
            {"inbound upstream refused: 503 sent, socket reset",
             in,
             {E::upstream_failed},
             TunnelPhase::closed,
             SocketReading::ended,
             SocketWriting::ended,
             StreamState::closed,
             SocketEnding::reset,
             "close"},
            {"bytes read are lent to HTTP/2",
             in,
             {E::answered, E::read_data},
             TunnelPhase::open,
             SocketReading::framing,
             SocketWriting::open,
             StreamState::open,
             SocketEnding::graceful,
             ""},
            {"framed: read again",
             in,
             {E::answered, E::read_data, E::framed},
             TunnelPhase::open,
             SocketReading::reading,
             SocketWriting::open,
             StreamState::open,
             SocketEnding::graceful,
             "read"},
            {"no lent buffer: read again at once",
             in,
             {E::answered, E::read_no_buffer},
             TunnelPhase::open,
             SocketReading::reading,
             SocketWriting::open,
             StreamState::open,
             SocketEnding::graceful,
             "read"},
            {"application FIN: END_STREAM, the other direction goes on",
             in,
             {E::answered, E::read_eof},
             TunnelPhase::open,
             SocketReading::ended,
             SocketWriting::open,
             StreamState::open,
             SocketEnding::graceful,
             "end_stream"},
            {"peer END_STREAM: write what is left, then FIN",
             in,
             {E::answered, E::end_stream},
             TunnelPhase::open,
             SocketReading::reading,
             SocketWriting::finishing,
             StreamState::open,
             SocketEnding::graceful,
             "write"},
            {"every byte written after END_STREAM: FIN",
             in,
             {E::answered, E::end_stream, E::writes_drained},
             TunnelPhase::open,
             SocketReading::reading,
             SocketWriting::ended,
             StreamState::open,
             SocketEnding::graceful,
             "shutdown"},
            {"drained before END_STREAM changes nothing",
             in,
             {E::answered, E::writes_drained},
             TunnelPhase::open,
             SocketReading::reading,
             SocketWriting::open,
             StreamState::open,
             SocketEnding::graceful,
             ""},
            {"END_STREAM before 200: FIN only once open",
             out,
             {E::stream_opened, E::end_stream, E::writes_drained},
             TunnelPhase::awaiting_response,
             SocketReading::idle,
             SocketWriting::finishing,
             StreamState::open,
             SocketEnding::graceful,
             ""},
            {"both FINs: a clean close",
             in,
             {E::answered, E::read_eof, E::end_stream, E::writes_drained},
             TunnelPhase::closed,
             SocketReading::ended,
             SocketWriting::ended,
             StreamState::open,
             SocketEnding::graceful,
             "shutdown,close"},
            {"both FINs, the other order",
             in,
             {E::answered, E::end_stream, E::writes_drained, E::read_eof},
             TunnelPhase::closed,
             SocketReading::ended,
             SocketWriting::ended,
             StreamState::open,
             SocketEnding::graceful,
             "end_stream,close"},
            {"application reset: RST_STREAM and a reset socket",
             in,
             {E::answered, E::socket_reset},
             TunnelPhase::closed,
             SocketReading::ended,
             SocketWriting::ended,
             StreamState::closed,
             SocketEnding::reset,
             "reset_stream,close"},
            {"a reset while HTTP/2 frames a read still resets the stream",
             in,
             {E::answered, E::read_data, E::stream_aborted},
             TunnelPhase::closed,
             SocketReading::ended,
             SocketWriting::ended,
             StreamState::closed,
             SocketEnding::reset,
             "reset_stream,close"},
            {"peer RST_STREAM that aborts: socket reset, no RST back",
             in,
             {E::answered, E::stream_aborted},
             TunnelPhase::closed,
             SocketReading::ended,
             SocketWriting::ended,
             StreamState::closed,
             SocketEnding::reset,
             "close"},
            {"peer RST_STREAM(NO_ERROR) after its FIN is an ordinary end",
             in,
             {E::answered, E::end_stream, E::stream_reset},
             TunnelPhase::open,
             SocketReading::reading,
             SocketWriting::finishing,
             StreamState::closed,
             SocketEnding::graceful,
             ""},
            {"stream closed with a direction still open: reset",
             in,
             {E::answered, E::read_eof, E::stream_closed},
             TunnelPhase::closed,
             SocketReading::ended,
             SocketWriting::ended,
             StreamState::closed,
             SocketEnding::reset,
             "close"},
            {"stream closed after both FINs on the wire: writes finish",
             in,
             {E::answered, E::read_eof, E::end_stream, E::stream_closed},
             TunnelPhase::open,
             SocketReading::ended,
             SocketWriting::finishing,
             StreamState::closed,
             SocketEnding::graceful,
             ""},
            {"link lost while open: reset",
             out,
             {E::stream_opened, E::answered, E::link_lost},
             TunnelPhase::closed,
             SocketReading::ended,
             SocketWriting::ended,
             StreamState::closed,
             SocketEnding::reset,
             "close"},
            {"link lost after both FINs: finish the writes without it",
             out,
             {E::stream_opened, E::answered, E::read_eof, E::end_stream, E::link_lost},
             TunnelPhase::open,
             SocketReading::ended,
             SocketWriting::finishing,
             StreamState::closed,
             SocketEnding::graceful,
             "leave_link,write"},
            {"link lost before the handshake: the client's socket just closes",
             out,
             {E::link_lost},
             TunnelPhase::closed,
             SocketReading::ended,
             SocketWriting::ended,
             StreamState::none,
             SocketEnding::graceful,
             "close"},
            {"link lost while awaiting the answer: RST_STREAM, socket closed",
             out,
             {E::stream_opened, E::link_lost},
             TunnelPhase::closed,
             SocketReading::ended,
             SocketWriting::ended,
             StreamState::closed,
             SocketEnding::graceful,
             "close"},
            {"inbound link lost while connecting: reset",
             in,
             {E::link_lost},
             TunnelPhase::closed,
             SocketReading::ended,
             SocketWriting::ended,
             StreamState::closed,
             SocketEnding::reset,
             "close"},
            {"a failure while open (policy change): RST_STREAM and reset",
             in,
             {E::answered, E::failed},
             TunnelPhase::closed,
             SocketReading::ended,
             SocketWriting::ended,
             StreamState::closed,
             SocketEnding::reset,
             "reset_stream,close"},
            {"a failure while waiting: closed",
             out,
             {E::failed},
             TunnelPhase::closed,
             SocketReading::ended,
             SocketWriting::ended,
             StreamState::none,
             SocketEnding::graceful,
             "close"},
            {"nothing changes after closed",
             in,
             {E::answered, E::failed, E::answered, E::read_eof},
             TunnelPhase::closed,
             SocketReading::ended,
             SocketWriting::ended,
             StreamState::closed,
             SocketEnding::reset,
             ""},
    };
    for (const Row& row : rows) {
        CAPTURE(std::string(row.what));
        TunnelState state(row.side);
        TunnelSteps last = run(state, row.events);
        CHECK(to_string(state.phase()) == to_string(row.phase));
        CHECK(to_string(state.reading()) == to_string(row.reading));
        CHECK(to_string(state.writing()) == to_string(row.writing));
        CHECK(to_string(state.stream()) == to_string(row.stream));
        CHECK(to_string(state.ending()) == to_string(row.ending));
        CHECK(steps(last) == row.last_steps);
    }
}
