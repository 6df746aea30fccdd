CREATE TABLE "desktop_snapshot_schedules" (
	"desktop_id" text PRIMARY KEY NOT NULL,
	"setting" jsonb NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"updated_by" text NOT NULL
);
--> statement-breakpoint
ALTER TABLE "desktops" ADD COLUMN "snapshot_due_at" timestamp with time zone DEFAULT now();--> statement-breakpoint
ALTER TABLE "desktops" ADD COLUMN "snapshot_run_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "templates" ADD COLUMN "snapshot_schedule" jsonb;--> statement-breakpoint
CREATE INDEX "desktops_snapshot_due_idx" ON "desktops" USING btree ("snapshot_due_at");--> statement-breakpoint
-- DELETED desktops take no snapshots: only the living are looked at once by the first cron run.
UPDATE "desktops" SET "snapshot_due_at" = NULL WHERE "status" = 'DELETED';