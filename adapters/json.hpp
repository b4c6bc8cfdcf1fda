#pragma once
// Transitional: the JSON writer moves here from gateway/.
#include "gateway/json.hpp"
