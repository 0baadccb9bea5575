// Jest runs the compiled ESM output (tsc -b first), so tests execute exactly the JavaScript we ship.
import { availableParallelism } from 'node:os';

const common = { testEnvironment: 'node', transform: {}, moduleFileExtensions: ['js', 'mjs', 'cjs', 'json'] };
export default {
  projects: [
    {
      ...common,
      displayName: 'unit',
      // A package whose tests need helpers of their own compiles them apart, into dist-test (transcript).
      testMatch: [
        '<rootDir>/packages/*/dist/**/*.test.js',
        '<rootDir>/packages/*/dist-test/**/*.test.js',
        '<rootDir>/protocols/*/dist/**/*.test.js',
      ],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/tests/dist/**/*.test.js'],
    },
  ],
  testTimeout: 60000,
  // Jest's default (one worker fewer than cores) runs serially on a 2-core machine, though a test file mostly waits
  // on the servers it starts; two files at a time keep both cores busy. Each file starts its own servers on free
  // ports and temp dirs, so files do not share state.
  maxWorkers: Math.max(2, availableParallelism() - 1),
};
