#pragma once

// TunnelState is the life of one tunnel (one CONNECT stream joined to one application socket) as
// a pure state machine, in the manner of `uring::Pipe`: it is told what happened (`on`) and
// answers with the `TunnelSteps` to take. It never touches a socket, a stream or the ring, so
// every transition is testable with plain values; `Tunnel` (tunnel.cc) performs the steps.
//
// One phase and one state per direction replace a set of flags:
//   phase    waiting_link -> awaiting_response -> open -> closed      (outbound)
//                              connecting      -> open -> closed      (inbound)
//   reading  (socket -> stream)  idle <-> reading -> framing -> idle ...; ended at the socket's FIN
//   writing  (stream -> socket)  open -> finishing (END_STREAM came) -> ended (FIN sent)
// The tunnel ends cleanly once both directions ended; any failure ends it at once, resetting the
// socket (SO_LINGER 0) where the application could otherwise mistake it for a clean close, and
// the stream (RST_STREAM CONNECT_ERROR) while it is open, as RFC 9113 §8.5 maps TCP resets.

#include <cstdint>
#include <string_view>

namespace zt::proxy {

// TunnelSide is which end of the mesh the tunnel serves.
enum class TunnelSide : uint8_t {
    outbound,  // Our pod's application is the client; we send the CONNECT.
    inbound,   // Our pod's application is the server; we answer the CONNECT.
};

// TunnelPhase is where the tunnel is in its life.
enum class TunnelPhase : uint8_t {
    waiting_link,       // Outbound: its link is still being dialled or handshaking.
    awaiting_response,  // Outbound: CONNECT sent, no answer yet.
    connecting,         // Inbound: connecting to the application before answering.
    open,               // Bytes flow both ways.
    closed,             // Ended and reported; freed once its socket operations left the kernel.
};

// SocketReading is the socket -> stream direction.
enum class SocketReading : uint8_t {
    idle,     // Nothing in flight; a read is armed while the tunnel is open.
    reading,  // A socket read is in the kernel.
    framing,  // The last read's bytes are lent to HTTP/2 until it reports them framed.
    ended,    // The socket sent FIN and END_STREAM was written (or the tunnel closed).
};

// SocketWriting is the stream -> socket direction.
enum class SocketWriting : uint8_t {
    open,       // The stream's DATA goes to the socket as it arrives.
    finishing,  // END_STREAM arrived: the socket gets FIN once every byte is written.
    ended,      // FIN sent (shutdown(SHUT_WR)).
};

// StreamState is the HTTP/2 stream as far as the tunnel may still act on it.
enum class StreamState : uint8_t {
    none,    // Not opened yet (outbound, waiting for its link).
    open,    // It may be written to and reset.
    closed,  // Ended (answered non-200, reset, closed by HTTP/2): never touched again.
};

// SocketEnding is how the application's socket is closed.
enum class SocketEnding : uint8_t {
    graceful,  // A plain close after FIN both ways.
    reset,     // SO_LINGER {1, 0}: the application sees a reset.
};

// TunnelEvent is what happened to a tunnel.
enum class TunnelEvent : uint8_t {
    stream_opened,    // Outbound: the CONNECT was submitted on its link.
    answered,         // Outbound: 200. Inbound: the application accepted; 200 was sent.
    refused,          // Outbound: the peer answered non-200 (the stream ended with it).
    upstream_failed,  // Inbound: the connect to the application failed; 503 was sent.
    read_data,        // A socket read returned bytes; they were handed to HTTP/2.
    read_eof,         // A socket read returned 0: the application's FIN.
    read_no_buffer,   // A read found no lent buffer (ENOBUFS): read again into our own.
    framed,           // HTTP/2 framed the last read's bytes (its `send_done`).
    end_stream,       // The peer's END_STREAM.
    writes_drained,   // Nothing is left to write to the socket and nothing is in flight.
    stream_reset,     // The peer's RST_STREAM that is an ordinary end (NO_ERROR after FIN).
    stream_aborted,   // The peer's RST_STREAM that aborts the tunnel.
    stream_closed,    // HTTP/2 closed the stream.
    link_lost,        // Its link failed.
    socket_reset,     // A socket read or write failed (the application reset, ...).
    failed,           // Any other failure (a policy change, the pod removed, data refused).
};

std::string_view to_string(TunnelSide side);
std::string_view to_string(TunnelPhase phase);
std::string_view to_string(SocketReading reading);
std::string_view to_string(SocketWriting writing);
std::string_view to_string(StreamState stream);
std::string_view to_string(SocketEnding ending);
std::string_view to_string(TunnelEvent event);

// TunnelSteps is what to do after an event, in the order `Tunnel` performs them.
struct TunnelSteps {
    bool end_stream = false;    // Write END_STREAM on the stream.
    bool reset_stream = false;  // Send RST_STREAM(CONNECT_ERROR).
    bool leave_link = false;    // Both directions ended on the wire: finish without the link.
    bool read = false;          // Arm a socket read.
    bool write = false;         // Push what the stream delivered to the socket.
    bool shutdown = false;      // shutdown(SHUT_WR) the socket.
    bool close = false;         // Report the connection, detach, cancel, free.

    bool any() const {
        return end_stream || reset_stream || leave_link || read || write || shutdown || close;
    }
};

class TunnelState {
public:
    explicit TunnelState(TunnelSide side);

    // on applies `event` and returns the steps it calls for. It is the only function that
    // changes the state. An event after `closed` changes nothing.
    TunnelSteps on(TunnelEvent event);

    TunnelSide side() const { return side_; }

    TunnelPhase phase() const { return phase_; }

    SocketReading reading() const { return reading_; }

    SocketWriting writing() const { return writing_; }

    StreamState stream() const { return stream_; }

    SocketEnding ending() const { return ending_; }

private:
    // fail ends the tunnel on a failure: RST_STREAM while the stream is open, and a reset socket
    // when `reset_socket` or once the application could have seen bytes (connecting or open).
    TunnelSteps fail(bool reset_socket);
    // close ends the tunnel: phase `closed`, both directions ended.
    TunnelSteps close(TunnelSteps steps);
    // finish_if_done closes cleanly once both directions ended.
    TunnelSteps finish_if_done(TunnelSteps steps);
    // open_flow starts both directions.
    TunnelSteps open_flow();

    TunnelSide side_;
    TunnelPhase phase_;
    SocketReading reading_ = SocketReading::idle;
    SocketWriting writing_ = SocketWriting::open;
    StreamState stream_;
    SocketEnding ending_ = SocketEnding::graceful;
};

}  // namespace zt::proxy
