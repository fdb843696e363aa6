// translate_bench is a benchmark, not a test: it builds istiod-shaped resources in memory
// (10,000 workloads, 1,000 services, 1,000 policies by default), then times, over several runs,
// the three steps the control agent takes for a full push: translating every resource
// (`agent::translate_address`, `translate_authorization`), rendering the config file
// (`config::render`) and validating it as `ztunnel check-config` does (`config::load_text`). It
// prints the median of each and the file size; it never fails on the numbers. Figures go to
// docs/xds-translation.md.
//
// usage: translate_bench [--runs N] [--workloads N] [--services N] [--policies N]

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "src/agent/translate.h"
#include "src/config/incremental_load.h"
#include "src/config/load.h"
#include "src/config/render.h"

namespace {

namespace xw = istio::workload;
namespace xs = istio::security;

struct Options {
    int runs = 5;
    int workloads = 10000;
    int services = 1000;
    int policies = 1000;
};

std::string ipv4(int a, int b, int c, int d) {
    return std::string{char(a), char(b), char(c), char(d)};
}

std::string ns_of(int i) {
    return "ns" + std::to_string(i % 100);
}

// workload is a pod as istiod sends it: HBONE, an IP, a service with two ports, telemetry
// labels, locality, and a selector policy for one pod in ten.
xw::Address workload(int i, int services) {
    xw::Address address;
    xw::Workload& w = *address.mutable_workload();
    std::string name = "app" + std::to_string(i % 1000) + "-" + std::to_string(i);
    w.set_uid("Kubernetes//Pod/" + ns_of(i) + "/" + name);
    w.set_name(name);
    w.set_namespace_(ns_of(i));
    w.add_addresses(ipv4(198, 18 + (i >> 16), (i >> 8) & 255, i & 255));
    w.set_tunnel_protocol(xw::HBONE);
    w.set_service_account("sa" + std::to_string(i % 1000));
    w.set_node("node-" + std::to_string(i % 50));
    w.set_canonical_name("app" + std::to_string(i % 1000));
    w.set_canonical_revision("v1");
    w.set_workload_name("app" + std::to_string(i % 1000));
    w.mutable_locality()->set_region("region-1");
    w.mutable_locality()->set_zone("zone-" + std::to_string(i % 3));
    int s = i % std::max(services, 1);
    auto& ports =
            (*w.mutable_services())[ns_of(s) + "/svc" + std::to_string(s) + ".svc.cluster.local"];
    for (uint32_t port : {80u, 443u}) {
        auto* entry = ports.add_ports();
        entry->set_service_port(port);
        entry->set_target_port(port + 8000);
    }
    if (i % 10 == 0) {
        w.add_authorization_policies(ns_of(i) + "/policy" + std::to_string(i % 1000));
    }
    return address;
}

xw::Address service(int i) {
    xw::Address address;
    xw::Service& s = *address.mutable_service();
    s.set_name("svc" + std::to_string(i));
    s.set_namespace_(ns_of(i));
    s.set_hostname("svc" + std::to_string(i) + ".svc.cluster.local");
    s.add_addresses()->set_address(ipv4(198, 19, (i >> 8) & 255, i & 255));
    for (uint32_t port : {80u, 443u}) {
        auto* entry = s.add_ports();
        entry->set_service_port(port);
        entry->set_target_port(port + 8000);
    }
    s.add_subject_alt_names("spiffe://cluster.local/ns/" + ns_of(i) + "/sa/sa" + std::to_string(i));
    return address;
}

xs::Authorization policy(int i) {
    xs::Authorization a;
    a.set_name("policy" + std::to_string(i));
    a.set_namespace_(ns_of(i));
    a.set_scope(i % 2 == 0 ? xs::NAMESPACE : xs::WORKLOAD_SELECTOR);
    a.set_action(i % 5 == 0 ? xs::DENY : xs::ALLOW);
    auto* rule = a.add_rules();
    auto* from = rule->add_clauses()->add_matches();
    from->add_principals()->set_exact("cluster.local/ns/" + ns_of(i) + "/sa/sa" +
                                      std::to_string(i));
    from->add_namespaces()->set_prefix("ns");
    auto* range = from->add_source_ips();
    range->set_address(ipv4(198, 18, 0, 0));
    range->set_length(15);
    rule->add_clauses()->add_matches()->add_destination_ports(8080);
    return a;
}

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

double cpu_ms() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
}

double ms_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count();
}

bool parse_options(int argc, char** argv, Options& options) {
    for (int i = 1; i + 1 < argc; i += 2) {
        int value = std::atoi(argv[i + 1]);
        if (std::strcmp(argv[i], "--runs") == 0 && value > 0) {
            options.runs = value;
        } else if (std::strcmp(argv[i], "--workloads") == 0 && value >= 0) {
            options.workloads = value;
        } else if (std::strcmp(argv[i], "--services") == 0 && value >= 0) {
            options.services = value;
        } else if (std::strcmp(argv[i], "--policies") == 0 && value >= 0) {
            options.policies = value;
        } else {
            return false;
        }
    }
    return argc % 2 == 1;
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    if (!parse_options(argc, argv, options)) {
        std::fprintf(stderr,
                     "usage: translate_bench [--runs N] [--workloads N] [--services N] "
                     "[--policies N]\n");
        return 2;
    }
    std::vector<xw::Address> addresses;
    for (int i = 0; i < options.workloads; ++i) {
        addresses.push_back(workload(i, options.services));
    }
    for (int i = 0; i < options.services; ++i) {
        addresses.push_back(service(i));
    }
    std::vector<xs::Authorization> authorizations;
    for (int i = 0; i < options.policies; ++i) {
        authorizations.push_back(policy(i));
    }

    zt::agent::TranslateContext context;
    std::vector<double> translate_ms, render_ms, load_ms;
    zt::state::Config last_config;
    size_t bytes = 0;
    for (int run = 0; run < options.runs; ++run) {
        auto start = std::chrono::steady_clock::now();
        zt::state::Config config;
        for (const auto& address : addresses) {
            auto outcome = zt::agent::translate_address(address, context);
            if (outcome.workload) {
                config.workloads.push_back(std::move(*outcome.workload));
            } else if (outcome.service) {
                config.services.push_back(std::move(*outcome.service));
            } else {
                std::fprintf(stderr, "translate_bench: rejected: %s\n", outcome.error.c_str());
                return 1;
            }
        }
        for (const auto& authorization : authorizations) {
            config.policies.push_back(
                    *zt::agent::translate_authorization(authorization, context).policy);
        }
        translate_ms.push_back(ms_since(start));
        last_config = config;

        start = std::chrono::steady_clock::now();
        std::string text = zt::config::render(config);
        render_ms.push_back(ms_since(start));
        bytes = text.size();

        start = std::chrono::steady_clock::now();
        auto loaded = zt::config::load_text(text);
        load_ms.push_back(ms_since(start));
        if (!loaded.errors.empty()) {
            std::fprintf(stderr, "translate_bench: the rendered file does not load: %s\n",
                         loaded.errors.front().c_str());
            return 1;
        }
    }
    // What the agent's writer does for a change of one workload: render line by line and
    // validate with config::IncrementalLoad (load_text's steps, parsing only the new line).
    // CPU time as well as wall time: on a shared machine the CPU figures are the comparable ones.
    zt::config::IncrementalLoad incremental;
    (void)incremental.load(incremental.render(last_config));
    std::vector<double> inc_render_ms, inc_load_ms, inc_load_cpu_ms, full_load_cpu_ms;
    size_t parsed_lines = 0;
    for (int run = 0; run < options.runs; ++run) {
        last_config.workloads[size_t(run) % last_config.workloads.size()].canonical_revision =
                "rev-" + std::to_string(run);
        auto start = std::chrono::steady_clock::now();
        std::string text = incremental.render(last_config);
        inc_render_ms.push_back(ms_since(start));
        start = std::chrono::steady_clock::now();
        double cpu = cpu_ms();
        auto loaded = incremental.load(text);
        inc_load_cpu_ms.push_back(cpu_ms() - cpu);
        inc_load_ms.push_back(ms_since(start));
        parsed_lines = incremental.parsed();
        if (!loaded.errors.empty()) {
            std::fprintf(stderr, "translate_bench: the changed file does not load: %s\n",
                         loaded.errors.front().c_str());
            return 1;
        }
        cpu = cpu_ms();
        (void)zt::config::load_text(text);
        full_load_cpu_ms.push_back(cpu_ms() - cpu);
    }
    std::printf("resources: %d workloads, %d services, %d policies; file %.2f MiB\n",
                options.workloads, options.services, options.policies,
                double(bytes) / (1024.0 * 1024.0));
    std::printf("median of %d runs: translate %.1f ms, render %.1f ms, load_text %.1f ms\n",
                options.runs, median(translate_ms), median(render_ms), median(load_ms));
    std::printf(
            "one workload changed, median: render by lines %.1f ms, incremental load %.1f ms "
            "(%zu line parsed); CPU: incremental load %.1f ms, load_text %.1f ms\n",
            median(inc_render_ms), median(inc_load_ms), parsed_lines, median(inc_load_cpu_ms),
            median(full_load_cpu_ms));
    return 0;
}
