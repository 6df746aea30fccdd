/** Test-only signing key for the Workers project (never used outside tests). */
export const TEST_JWT_SECRET = 'test-only-jwt-secret-0123456789abcdef0123456789';
