// athanor: SQLAlchemy's ORM, done right in C++20. One include for everything:
//   #include <athanor/athanor.hpp>
//   namespace sa = athanor;
#pragma once

#include <athanor/core.hpp>
#include <athanor/engine.hpp>
#include <athanor/mapping.hpp>
#include <athanor/session.hpp>
