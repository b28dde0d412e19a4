// One lint config for the whole tree: typescript-eslint recommended, plus the
// layering rule from STYLE.md (imports flow cli -> node -> protocol, never back).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.tap/', 'coverage/'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/node/**', '**/cli/**'],
              message: 'protocol/ must not import node/ or cli/',
            },
            {
              group: ['node:fs*', 'node:net', 'node:http*', 'node:child_process', 'node:os'],
              message: 'protocol/ does no I/O',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['node/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/cli/**'], message: 'node/ must not import cli/' }] },
      ],
    },
  },
);
