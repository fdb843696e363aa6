// grpc_call makes one gRPC call with the agent's own client (src/agent/grpc_channel: our TLS,
// our HTTP/2, the agent's io_uring loop) and prints how it went as one JSON line, so a script can
// test the client against an independent server (tests/peers/grpc_echo.py):
//
//   grpc_call --host 127.0.0.1 --port N --root root.pem [--name istiod.istio-system.svc]
//             --method /test.Echo/Unary [--data TEXT] [--messages K] [--deadline-ms N]
//             [--header name=value] [--max-message BYTES] [--keepalive-ms N]
//
// --messages K sends K messages (each --data) and half-closes after the last answer, the shape
// of a bidirectional stream; otherwise one message and a half-close (unary). Exit 0 whenever the
// call ended (its status is in the output), 1 on a usage or setup error.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <openssl/sha.h>

#include "src/agent/grpc_channel.h"
#include "src/agent/loop.h"
#include "zt/log.h"

namespace {

using namespace zt::agent;

struct Outcome final : grpc::CallObserver, grpc::ChannelObserver {
    size_t expected = 1;
    std::string data;
    grpc::Call* call = nullptr;
    size_t messages = 0;
    size_t bytes = 0;
    std::string first;
    bool done = false;
    bool channel_closed = false;
    grpc::CallEnd end;

    void on_call_message(grpc::Call& c, std::string message) override {
        messages++;
        bytes += message.size();
        if (messages == 1) {
            first = message.substr(0, 200);
        }
        if (messages < expected) {
            (void)c.send(data);
        } else if (messages == expected) {
            c.close_send();
        }
    }

    void on_call_closed(grpc::Call&, const grpc::CallEnd& e) override {
        end = e;
        done = true;
    }

    void on_channel_closed(grpc::Channel&, std::string_view) override { channel_closed = true; }
};

std::string json_quote(std::string_view text) {
    std::string out;
    zt::log::detail::append_quoted(out, text);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    grpc::ChannelOptions options;
    std::string method;
    Outcome outcome;
    int64_t deadline_ms = 0;
    std::vector<zt::hbone::H2Field> headers;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string flag = argv[i];
        std::string value = argv[i + 1];
        if (flag == "--host") {
            options.host = value;
        } else if (flag == "--port") {
            options.port = uint16_t(std::atoi(value.c_str()));
        } else if (flag == "--root") {
            options.root_cert_file = value;
        } else if (flag == "--name") {
            options.server_name = value;
        } else if (flag == "--method") {
            method = value;
        } else if (flag == "--data") {
            outcome.data = value;
        } else if (flag == "--messages") {
            outcome.expected = size_t(std::atoi(value.c_str()));
        } else if (flag == "--deadline-ms") {
            deadline_ms = std::atoll(value.c_str());
        } else if (flag == "--keepalive-ms") {
            // PING interval and timeout both (the agent uses 30 s / 10 s).
            options.keepalive_interval_ns = std::atoll(value.c_str()) * zt::kNanosPerMilli;
            options.keepalive_timeout_ns = options.keepalive_interval_ns;
        } else if (flag == "--max-message") {
            options.max_message_bytes = size_t(std::atoll(value.c_str()));
        } else if (flag == "--header") {
            size_t eq = value.find('=');
            headers.push_back(
                    {value.substr(0, eq), eq == std::string::npos ? "" : value.substr(eq + 1)});
        } else {
            std::fprintf(stderr, "grpc_call: unknown flag %s\n", flag.c_str());
            return 1;
        }
    }
    if (options.host.empty() || method.empty() || options.root_cert_file.empty()) {
        std::fprintf(stderr, "grpc_call: --host, --root and --method are required\n");
        return 1;
    }
    auto stop = StopRequest::create();
    auto loop = Loop::create(zt::system_clock(), **stop);
    if (!loop) {
        std::fprintf(stderr, "grpc_call: no io_uring\n");
        return 77;
    }
    auto channel =
            std::make_unique<grpc::Channel>((*loop)->ring(), zt::system_clock(), options, outcome);
    int64_t deadline = deadline_ms > 0 ? zt::monotonic_ns() + deadline_ms * zt::kNanosPerMilli : 0;
    auto call = channel->start_call(method, headers, deadline, outcome);
    if (!call) {
        std::fprintf(stderr, "grpc_call: cannot start the call\n");
        return 1;
    }
    outcome.call = *call;
    (void)(*call)->send(outcome.data);
    if (outcome.expected <= 1) {
        (*call)->close_send();
    }
    channel->start();
    int64_t give_up = zt::monotonic_ns() + 60 * zt::kNanosPerSecond;
    while (!outcome.done && zt::monotonic_ns() < give_up) {
        (*loop)->run_once(100'000'000);
    }
    channel->shutdown();
    while (!outcome.channel_closed && zt::monotonic_ns() < give_up) {
        (*loop)->run_once(100'000'000);
    }
    std::printf(
            "{\"code\":%s,\"message\":%s,\"from_server\":%s,\"established\":%s,"
            "\"messages\":%zu,\"bytes\":%zu,\"first\":%s}\n",
            json_quote(grpc::to_string(outcome.end.status.code)).c_str(),
            json_quote(outcome.end.status.message).c_str(),
            outcome.end.from_server ? "true" : "false", outcome.end.established ? "true" : "false",
            outcome.messages, outcome.bytes, json_quote(outcome.first).c_str());
    channel.reset();
    return outcome.done ? 0 : 1;
}
