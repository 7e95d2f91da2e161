// Lattice laws (commutativity, associativity, idempotence, monotonicity, inflation,
// m(x) == x ⊔ mδ(x), join decomposition, order-insensitive delivery, round-trips) for every
// causal type, plus decoder robustness on truncated and corrupted bytes.
#include <doctest/doctest.h>

#include "tests/crdt_models.hpp"

using namespace deltacrdt::testing;

TEST_SUITE("crdt.laws") {
  TEST_CASE("AWLWWMap satisfies the lattice laws") { check_lattice_laws<AWLWWMapModel>(); }
  TEST_CASE("AWLWWMap with indexed storage satisfies the lattice laws") {
    check_lattice_laws<AWLWWMapWideModel>();
  }
  TEST_CASE("AWLWWMap of CompactString satisfies the lattice laws") {
    check_lattice_laws<AWLWWMapCompactModel>();
  }
  TEST_CASE("ORSet satisfies the lattice laws") { check_lattice_laws<ORSetModel>(); }
  TEST_CASE("EWFlag satisfies the lattice laws") { check_lattice_laws<EWFlagModel>(); }
  TEST_CASE("MVRegister satisfies the lattice laws") { check_lattice_laws<MVRegisterModel>(); }
  TEST_CASE("CausalCounter satisfies the lattice laws") {
    check_lattice_laws<CausalCounterModel>();
  }
  TEST_CASE("ORMap of counters satisfies the lattice laws") {
    check_lattice_laws<CounterMapModel>();
  }
  TEST_CASE("ORMap nested two levels satisfies the lattice laws") {
    check_lattice_laws<NestedMapModel>();
  }
}

TEST_SUITE("crdt.decode") {
  TEST_CASE("AWLWWMap with indexed storage rejects truncated and corrupted encodings") {
    check_decoder_robustness<AWLWWMapWideModel>();
  }
  TEST_CASE("AWLWWMap rejects truncated and corrupted encodings") {
    check_decoder_robustness<AWLWWMapModel>();
  }
  TEST_CASE("AWLWWMap of CompactString rejects truncated and corrupted encodings") {
    check_decoder_robustness<AWLWWMapCompactModel>();
  }
  TEST_CASE("ORSet rejects truncated and corrupted encodings") {
    check_decoder_robustness<ORSetModel>();
  }
  TEST_CASE("EWFlag rejects truncated and corrupted encodings") {
    check_decoder_robustness<EWFlagModel>();
  }
  TEST_CASE("MVRegister rejects truncated and corrupted encodings") {
    check_decoder_robustness<MVRegisterModel>();
  }
  TEST_CASE("CausalCounter rejects truncated and corrupted encodings") {
    check_decoder_robustness<CausalCounterModel>();
  }
  TEST_CASE("ORMap of counters rejects truncated and corrupted encodings") {
    check_decoder_robustness<CounterMapModel>();
  }
  TEST_CASE("nested ORMap rejects truncated and corrupted encodings") {
    check_decoder_robustness<NestedMapModel>();
  }
}
