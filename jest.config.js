// Jest runs the compiled ESM output (tsc -b first), so tests execute exactly the JavaScript we ship.
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
};
