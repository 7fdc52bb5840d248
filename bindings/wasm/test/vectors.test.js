'use strict';
// Every file in tests/vectors/ through the package loaded with require().
const { test } = require('node:test');
const siptoken = require('siptoken');
const { registerVectorTests } = require('./support/vectors.js');

registerVectorTests(test, siptoken, 'require');
