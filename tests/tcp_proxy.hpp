// TcpProxy: a TCP forwarder on 127.0.0.1 for partition tests. Nodes advertise the proxy's
// address, so their peers dial through it; cut() closes every forwarded connection and
// refuses new ones until restore(). Runs its own I/O thread.
#pragma once

#include <array>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "transport/asio.hpp"

namespace deltacrdt::testing {

class TcpProxy {
 public:
  explicit TcpProxy(std::uint16_t target)
      : target_(asio::ip::make_address("127.0.0.1"), target),
        acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TcpProxy() {
    asio::post(io_, [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      close_all();
    });
    guard_.reset();
    io_.stop();
    thread_.join();
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port()); }

  void cut() {
    std::promise<void> done;
    asio::post(io_, [this, &done] {
      cut_ = true;
      close_all();
      done.set_value();
    });
    done.get_future().wait();
  }
  void restore() {
    asio::post(io_, [this] { cut_ = false; });
  }

 private:
  struct Pair {
    asio::ip::tcp::socket a, b;
    std::array<char, 16384> ab{}, ba{};
    explicit Pair(asio::io_context& io) : a(io), b(io) {}
    void close() {
      boost::system::error_code ec;
      a.close(ec);
      b.close(ec);
    }
  };

  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, asio::ip::tcp::socket s) {
      if (ec) return;
      if (!cut_) {
        auto p = std::make_shared<Pair>(io_);
        p->a = std::move(s);
        pairs_.push_back(p);
        p->b.async_connect(target_, [this, p](boost::system::error_code cec) {
          if (cec) return p->close();
          pump(p, p->a, p->b, p->ab);
          pump(p, p->b, p->a, p->ba);
        });
      }
      accept();
    });
  }

  void pump(std::shared_ptr<Pair> p, asio::ip::tcp::socket& from, asio::ip::tcp::socket& to,
            std::array<char, 16384>& buf) {
    from.async_read_some(asio::buffer(buf), [this, p, &from, &to, &buf](
                                                boost::system::error_code ec, std::size_t n) {
      if (ec) return p->close();
      asio::async_write(to, asio::buffer(buf.data(), n),
                        [this, p, &from, &to, &buf](boost::system::error_code wec, std::size_t) {
                          if (wec) return p->close();
                          pump(p, from, to, buf);
                        });
    });
  }

  void close_all() {
    for (auto& w : pairs_)
      if (auto p = w.lock()) p->close();
    pairs_.clear();
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io_.get_executor()};
  asio::ip::tcp::endpoint target_;
  asio::ip::tcp::acceptor acceptor_;
  std::vector<std::weak_ptr<Pair>> pairs_;
  bool cut_ = false;
  std::thread thread_;
};

}  // namespace deltacrdt::testing
