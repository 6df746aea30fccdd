CREATE TABLE "audit_log" (
	"id" text PRIMARY KEY NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"actor" text NOT NULL,
	"role" text NOT NULL,
	"action" text NOT NULL,
	"target" text,
	"source_ip" text,
	"request_id" text,
	"outcome" text NOT NULL,
	"details" text
);
--> statement-breakpoint
CREATE TABLE "usage_intervals" (
	"id" text PRIMARY KEY NOT NULL,
	"desktop_id" text NOT NULL,
	"user_id" text NOT NULL,
	"plan" text NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"stopped_at" timestamp with time zone,
	"stop_reason" text
);
--> statement-breakpoint
CREATE TABLE "webhook_deliveries" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"webhook_id" text NOT NULL,
	"event_id" text NOT NULL,
	"event_type" text NOT NULL,
	"attempt" integer NOT NULL,
	"outcome" text NOT NULL,
	"http_status" integer,
	"error" text,
	"duration_ms" integer,
	"at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "webhooks" (
	"id" text PRIMARY KEY NOT NULL,
	"owner_role" text NOT NULL,
	"owner_sub" text NOT NULL,
	"url" text NOT NULL,
	"event_types" text NOT NULL,
	"secret" text NOT NULL,
	"description" text,
	"created_at" timestamp with time zone NOT NULL,
	"deleted_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "desktops" ADD COLUMN "idle_timeout_minutes" double precision DEFAULT 60 NOT NULL;--> statement-breakpoint
ALTER TABLE "desktops" ADD COLUMN "max_session_minutes" integer;--> statement-breakpoint
ALTER TABLE "desktops" ADD COLUMN "last_activity_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "desktops" ADD COLUMN "last_activity_source" text;--> statement-breakpoint
ALTER TABLE "desktops" ADD COLUMN "last_activity_reason" text;--> statement-breakpoint
ALTER TABLE "desktops" ADD COLUMN "idle_stop_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "desktops" ADD COLUMN "session_ends_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "desktops" ADD COLUMN "stop_reason" text;--> statement-breakpoint
ALTER TABLE "desktops" ADD COLUMN "next_due_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "audit_at_idx" ON "audit_log" USING btree ("at");--> statement-breakpoint
CREATE INDEX "audit_actor_idx" ON "audit_log" USING btree ("actor","at");--> statement-breakpoint
CREATE INDEX "audit_target_idx" ON "audit_log" USING btree ("target","at");--> statement-breakpoint
CREATE INDEX "usage_user_started_idx" ON "usage_intervals" USING btree ("user_id","started_at");--> statement-breakpoint
CREATE INDEX "webhook_deliveries_webhook_idx" ON "webhook_deliveries" USING btree ("webhook_id","at");--> statement-breakpoint
CREATE INDEX "webhooks_owner_idx" ON "webhooks" USING btree ("owner_role","owner_sub");--> statement-breakpoint
CREATE INDEX "desktops_site_status_idx" ON "desktops" USING btree ("site_id","status");--> statement-breakpoint
CREATE INDEX "desktops_next_due_idx" ON "desktops" USING btree ("next_due_at");--> statement-breakpoint
CREATE INDEX "desktops_idle_stop_idx" ON "desktops" USING btree ("idle_stop_at");