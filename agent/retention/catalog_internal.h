// Test-only view of the catalog's SQL. Production code must not include this.
//
// The catalog promises that lookups by seq, time, tag name and group tag, and
// the segment listing, are indexed queries, never table scans. The tests run
// EXPLAIN QUERY PLAN over exactly the statements catalog.cc executes, which is
// what this accessor hands out.
#pragma once

#include <vector>

namespace mt::retention::internal {

struct CatalogQuery {
  const char* what;  // e.g. "LatestPoint by kind"
  const char* sql;   // the statement text, with ?N parameters
};

// The lookups that must use an index (see docs/formats/catalog.md, "Indexes").
std::vector<CatalogQuery> CatalogIndexedQueries();

}  // namespace mt::retention::internal
