ALTER TABLE "webhooks" ADD COLUMN "admin_until" timestamp with time zone;--> statement-breakpoint
-- Admin subscriptions of earlier releases keep being delivered for 30 days; their owners renew them by using the API as admins.
UPDATE "webhooks" SET "admin_until" = now() + interval '30 days' WHERE "owner_role" = 'admin' AND "deleted_at" IS NULL;
