// Shared main for every doctest executable in tests/.
// Unlike doctest's stock main, it fails when the filters selected no test case, so that a
// mistyped --test-suite or --test-case cannot pass silently. Queries (--help, --version,
// --list-test-cases, --count, ...) are not runs and keep doctest's exit code.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

namespace {

// Written by the listener during Context::run(); read by main() afterwards.
unsigned g_cases_started = 0;
bool g_was_query = false;

// A listener sees every event next to the selected reporter; it only counts test cases.
class RunCounter final : public doctest::IReporter {
 public:
  explicit RunCounter(const doctest::ContextOptions& /*options*/) {}

  void report_query(const doctest::QueryData& /*data*/) override { g_was_query = true; }
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats& /*stats*/) override {}
  void test_case_start(const doctest::TestCaseData& /*data*/) override { ++g_cases_started; }
  void test_case_reenter(const doctest::TestCaseData& /*data*/) override {}
  void test_case_end(const doctest::CurrentTestCaseStats& /*stats*/) override {}
  void test_case_exception(const doctest::TestCaseException& /*e*/) override {}
  void subcase_start(const doctest::SubcaseSignature& /*signature*/) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData& /*data*/) override {}
  void log_message(const doctest::MessageData& /*data*/) override {}
  void test_case_skipped(const doctest::TestCaseData& /*data*/) override {}
};

}  // namespace

REGISTER_LISTENER("deltacrdt_run_counter", 1, RunCounter);

int main(int argc, char** argv) {
  doctest::Context context;
  context.applyCommandLine(argc, argv);
  const int result = context.run();
  if (context.shouldExit() || g_was_query) {
    return result;
  }
  if (g_cases_started == 0) {
    std::fprintf(stderr,
                 "error: no test case ran; check the --test-suite/--test-case filters "
                 "(doctest alone would have exited 0)\n");
    return result != 0 ? result : 1;
  }
  return result;
}
