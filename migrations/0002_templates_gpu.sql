CREATE TABLE "templates" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"os" text NOT NULL,
	"description" text,
	"backend" text NOT NULL,
	"protocol" text NOT NULL,
	"default_plan" text NOT NULL,
	"gpu_slots" integer DEFAULT 0 NOT NULL,
	"idle_timeout_minutes" double precision NOT NULL,
	"max_session_minutes" integer,
	"storage_gb" integer,
	"image" text,
	"vm_template" text,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"retired_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "desktops" ADD COLUMN "template_id" text;--> statement-breakpoint
ALTER TABLE "desktops" ADD COLUMN "backend" text DEFAULT 'proxmox' NOT NULL;--> statement-breakpoint
ALTER TABLE "desktops" ADD COLUMN "gpu_slots" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "desktops" ADD COLUMN "session_url" text;