// athanor session: Session, sessionmaker, Query, bulk operations.
#pragma once

#include <athanor/session/query.hpp>
#include <athanor/session/session.hpp>
