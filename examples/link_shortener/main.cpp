// link-shortener: one node of the replicated link shortener (docs/link-shortener.md).
// Runs until SIGINT or SIGTERM, then lets in-flight requests finish, says goodbye to the
// other nodes and exits 0.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <memory>
#include <thread>
#include <variant>

#include "cluster/node.hpp"
#include "examples/link_shortener/api.hpp"
#include "examples/link_shortener/command_line.hpp"
#include "examples/link_shortener/http_server.hpp"
#include "examples/link_shortener/link_store.hpp"

using namespace deltacrdt;
using namespace deltacrdt::shortener;

int main(int argc, char** argv) {
  auto parsed = parse_command_line(argc, argv);
  if (const int* exit_code = std::get_if<int>(&parsed)) return *exit_code;
  const ShortenerConfig& config = std::get<ShortenerConfig>(parsed);

  // Signals are blocked in every thread (the node's and the server's inherit the mask);
  // the main thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (config.insecure_dev) {
    std::fprintf(stderr,
                 "link-shortener: WARNING: --insecure-dev uses a secret published in the source "
                 "code.\nlink-shortener: WARNING: anyone who can reach %s can join this cluster "
                 "and read or change every link. Never use it beyond a development machine.\n",
                 config.listen.c_str());
  }
  auto logger = std::make_shared<Logger>(config.log_level);
  std::unique_ptr<Node> node;
  std::unique_ptr<LinkStore> store;
  std::unique_ptr<HttpServer> server;
  RequestMetrics metrics;
  std::unique_ptr<Api> api;
  std::string http_address;
  try {
    NodeOptions o;
    o.name = config.name;
    o.listen = config.listen;
    o.advertise = config.advertise;
    o.cluster = "link-shortener";
    o.secret = config.secret;
    o.seeds = config.seeds;
    o.data_dir = config.data_dir;
    o.tls = config.tls;
    o.remove_after_down = config.remove_after_down;
    o.fsync = FsyncPolicy::batched;
    o.logger = logger;
    node = std::make_unique<Node>(o);
    SyncOptions sync;
    sync.sync_interval = config.sync_interval;
    ReadinessOptions readiness;
    readiness.alone_after = config.alone_after;
    store = std::make_unique<LinkStore>(*node, sync, config.neighbours, readiness);
    HttpServerOptions ho;
    ho.listen = config.http;
    ho.threads = config.http_threads;
    ho.logger = logger;
    ho.max_connections = config.http_max_connections;
    ho.max_connections_per_address = config.http_max_connections_per_address;
    server = std::make_unique<HttpServer>(ho);
    // Short URLs name the bound port (it may have been 0 on the command line).
    http_address = parse_host_port(config.http, "http").host + ":" + std::to_string(server->port());
    api = std::make_unique<Api>(*store, *node, metrics,
                                ApiOptions{config.write_concern, config.read_concern, http_address,
                                           config.admin_token});
    api->set_http_stats([s = server.get()] { return s->stats(); });
    server->start([a = api.get()](const Request& req) { return a->handle(req); });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "link-shortener: cannot start: %s\n", e.what());
    return 1;
  }
  logger->log(LogLevel::info, "http_listening",
              {{"node", config.name},
               {"http", http_address},
               {"write_concern", config.write_concern_name}});
  // One line on stdout once serving: scripts and tests wait for it.
  std::printf("link-shortener %s: http %s, cluster %s\n", config.name.c_str(), http_address.c_str(),
              node->address().c_str());
  std::fflush(stdout);

  // Every second this node's figures go into the figures replica when they changed: the web
  // page's cluster panel shows every member's (LinkStore::publish_figures).
  asio::io_context figures_io;
  asio::steady_timer figures_timer(figures_io);
  bool figures_stopping = false;  // on figures_io's thread only
  asio::co_spawn(
      figures_io,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          try {
            auto publishing = store->publish_figures();
            co_await std::move(publishing);
          } catch (const std::exception& e) {
            logger->log(LogLevel::warn, "figures_not_published", {{"reason", e.what()}});
          }
          if (figures_stopping) co_return;
          figures_timer.expires_after(std::chrono::seconds(1));
          auto waiting = figures_timer.async_wait(asio::as_tuple(asio::use_awaitable));
          auto [ec] = co_await std::move(waiting);
          if (ec) co_return;
        }
      },
      asio::detached);
  std::thread figures_thread([&] { figures_io.run(); });

  int sig = 0;
  sigwait(&signals, &sig);
  logger->log(LogLevel::info, "shutting_down", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  asio::post(figures_io, [&] {
    figures_stopping = true;
    figures_timer.cancel();
  });
  figures_thread.join();
  server->stop();  // in-flight requests finish first (bounded)
  node->stop();    // goodbyes on every link; replicas flushed and closed
  return 0;
}
