#pragma once

// LinkState is the life of one HBONE link (one TCP connection carrying mutual TLS 1.3 and
// HTTP/2 between two ztunnels) as a pure state machine, in the manner of `uring::Pipe`: it is
// told what happened (`on`) and answers with the `LinkSteps` to take. It never touches the
// socket, the engines or the ring; `Link` (link.cc) performs the steps.
//
//   phase      dialing (client) -> handshaking -> open -> closing -> closed
//   receiving  idle -> own_buffer | lent_buffer -> idle ...; own_buffer -> giving_back -> idle
//
// `closing` flushes what the engines still have (a TLS alert, a final GOAWAY); `closed` means
// the socket will send nothing more, and the link is freed once no operation of it is in the
// kernel. A link that carries no stream receives into a small buffer the worker lends, so an
// idle link holds no 128 KiB buffer of its own (`giving_back` cancels the receive that holds it).

#include <cstdint>
#include <string_view>

namespace zt::proxy {

// LinkRole is which end of the link we are.
enum class LinkRole : uint8_t {
    client,  // Dialled from a pod's outbound side, pooled.
    server,  // Accepted on a pod's 15008.
};

// LinkPhase is where the link is in its life.
enum class LinkPhase : uint8_t {
    dialing,      // Client: the TCP connect is in the kernel.
    handshaking,  // TLS handshake.
    open,         // HTTP/2 runs (it may be draining).
    closing,      // Failed or ended: flushing the last bytes.
    closed,       // Nothing more to send; freed once no operation is in the kernel.
};

// LinkReceiving is the link's receive direction.
enum class LinkReceiving : uint8_t {
    idle,         // No receive in the kernel.
    own_buffer,   // Receiving into the link's own buffer.
    lent_buffer,  // Receiving into a buffer the worker lends (an idle link).
    giving_back,  // The own-buffer receive is being cancelled so the idle link can free it.
};

// LinkEvent is what happened to a link.
enum class LinkEvent : uint8_t {
    dialed,          // Client: the TCP connect succeeded.
    receiving_own,   // A receive into the link's own buffer was submitted.
    receiving_lent,  // A receive into a lent buffer was submitted.
    received,        // A receive completed (bytes, an error, or cancelled).
    handshake_done,  // TLS finished and the peer was verified.
    first_answer,    // Client: a tunnel on this link got its 200, the link's first.
    idle_release,    // The link carries no stream: give its own receive buffer back.
    failed,          // Anything that ends the link (an error, a timeout, idle release).
    output_done,     // Closing, and nothing is left to send (or a send failed).
};

std::string_view to_string(LinkRole role);
std::string_view to_string(LinkPhase phase);
std::string_view to_string(LinkReceiving receiving);
std::string_view to_string(LinkEvent event);

// LinkSteps is what to do after an event.
struct LinkSteps {
    bool start_tls = false;       // Client: produce the first TLS flight.
    bool receive = false;         // Arm a receive.
    bool open_streams = false;    // Client: open the streams of the tunnels that waited.
    bool cancel_receive = false;  // Cancel the receive in the kernel.
    bool cancel_dial = false;     // Cancel the TCP connect in the kernel.
    bool end_tunnels = false;     // End every tunnel on the link (it failed).
    bool flush = false;           // Send what the engines produced, at the end of this completion.
};

class LinkState {
public:
    explicit LinkState(LinkRole role);

    // on applies `event` and returns the steps it calls for. It is the only function that
    // changes the state.
    LinkSteps on(LinkEvent event);

    LinkRole role() const { return role_; }

    LinkPhase phase() const { return phase_; }

    LinkReceiving receiving() const { return receiving_; }

    // answered says whether a tunnel on this client link got its 200 yet.
    bool answered() const { return answered_; }

    // ending says whether the link is closing or closed.
    bool ending() const { return phase_ == LinkPhase::closing || phase_ == LinkPhase::closed; }

private:
    LinkRole role_;
    LinkPhase phase_;
    LinkReceiving receiving_ = LinkReceiving::idle;
    bool answered_ = false;
};

// hold_output decides whether what one receive left the engines to send may wait for the next
// send (one flight fewer per new link on each side; RFC 9113 requires neither SETTINGS nor its ACK
// at once, only first and eventually). It may when it is only HTTP/2 bookkeeping that a frame due
// shortly will carry: on a server, the receive that finished the handshake while a CONNECT's
// upstream connect is running (its completion answers and flushes); on a client, the receive that
// brought the link's first 200 (the tunnel's first read flushes). Every other path flushes, and
// the worker's tick flushes every link, so nothing is held for more than a second.
bool hold_output(LinkRole role, bool finished_handshake, bool first_answer,
                 bool upstream_connecting);

}  // namespace zt::proxy
